package stream

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/arbor-cri/arbor/internal/safe"
)

// run is one Serve call. It owns every session and goroutine started while
// it serves: stop cancels them and closes their connections, wait returns
// once all have ended. Nothing new starts after stop.
type run struct {
	ctx      context.Context
	cancel   context.CancelFunc
	log      *slog.Logger
	wg       sync.WaitGroup // sessions and helper goroutines
	handlers sync.WaitGroup // running HTTP handlers

	mu      sync.Mutex
	stopped bool             // guarded by mu
	conns   map[net.Conn]int // connections with a running handler; guarded by mu
}

func newRun(parent context.Context, log *slog.Logger) *run {
	ctx, cancel := context.WithCancel(parent)
	return &run{ctx: ctx, cancel: cancel, log: log, conns: map[net.Conn]int{}}
}

// goTracked runs f in a goroutine owned by r, or returns errStopped. A
// panic in f is logged, naming what f does, and ends only f.
func (r *run) goTracked(what string, f func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return errStopped
	}
	r.wg.Go(func() { _ = safe.Run(r.log, what, f) })
	return nil
}

// begin registers a caller that runs until the returned done is called.
// Its context ends when ctx or the run ends.
func (r *run) begin(ctx context.Context) (context.Context, func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return nil, nil, errStopped
	}
	r.wg.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stopAfter := context.AfterFunc(r.ctx, cancel)
	return ctx, func() {
		stopAfter()
		cancel()
		r.wg.Done()
	}, nil
}

// stop cancels every session and starts nothing new, then ends the
// sessions still running in steps, each given grace to finish: first
// handlers may report their session's end to the client; then the
// connections of running handlers stop reading (the streams see EOF, and
// the library still closes the connection cleanly); last they are closed,
// which also releases writes to a client that does not read.
// http.Server.Shutdown leaves these hijacked connections alone.
func (r *run) stop(grace time.Duration) {
	r.mu.Lock()
	r.stopped = true
	r.cancel()
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		r.handlers.Wait()
		close(done)
	}()
	steps := []func(net.Conn){
		func(c net.Conn) { _ = c.SetReadDeadline(time.Now()) },
		func(c net.Conn) { _ = c.Close() },
	}
	for _, step := range steps {
		select {
		case <-done:
			return
		case <-time.After(grace):
			r.eachConn(step)
		}
	}
	<-done
}

// eachConn calls f for the connection of every running handler.
func (r *run) eachConn(f func(net.Conn)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		f(c)
	}
}

// wait returns once every tracked handler and goroutine has ended.
func (r *run) wait() {
	r.handlers.Wait()
	r.wg.Wait()
}

// handler serves h with each request tracked: its context ends with the
// run and its connection is closed at stop.
func (r *run) handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx, done, err := r.begin(req.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer done()
		conn, _ := req.Context().Value(connKey{}).(net.Conn)
		if !r.addConn(conn) {
			http.Error(w, errStopped.Error(), http.StatusServiceUnavailable)
			return
		}
		defer r.removeConn(conn)
		h.ServeHTTP(w, req.WithContext(ctx))
	})
}

func (r *run) addConn(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return false
	}
	r.handlers.Add(1)
	if c != nil {
		r.conns[c]++
	}
	return true
}

func (r *run) removeConn(c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.handlers.Done()
	if c == nil {
		return
	}
	if r.conns[c]--; r.conns[c] <= 0 {
		delete(r.conns, c)
	}
}

// connKey carries the request's connection in its context.
type connKey struct{}

// withConn is the http.Server ConnContext hook that stores the connection.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}
