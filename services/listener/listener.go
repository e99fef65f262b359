// Package listener is the service that owns Arbor's unix socket. One
// socket carries both CRI gRPC (HTTP/2 with content-type application/grpc)
// and plain HTTP/1 info endpoints, split by cmux. Each run builds a fresh
// gRPC and HTTP server, so a restart after a fault brings the socket back
// with clean state.
package listener

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/soheilhy/cmux"
	"google.golang.org/grpc"

	"github.com/arbor-cri/arbor/internal/safe"
	"github.com/arbor-cri/arbor/supervisor"
)

// Config says what the listener serves.
type Config struct {
	Path            string
	NewGRPC         func() *grpc.Server // builds a server with the CRI registered
	HTTP            http.Handler
	ShutdownTimeout time.Duration // how long running requests may take at stop
	// OnServe is called each time the socket starts serving.
	OnServe func()
}

// Listener is the socket service.
type Listener struct {
	cfg Config
	log *slog.Logger
}

// New returns the listener service.
func New(cfg Config, log *slog.Logger) *Listener {
	return &Listener{cfg: cfg, log: log}
}

func (l *Listener) String() string { return "listener" }

// Serve listens and serves until ctx is cancelled, then stops accepting,
// lets running requests finish within the shutdown timeout and removes the
// socket. A socket served by another live process is a fatal error.
func (l *Listener) Serve(ctx context.Context) error {
	ln, err := Listen(l.cfg.Path)
	if errors.Is(err, ErrInUse) {
		return supervisor.Fatal(err)
	}
	if err != nil {
		return err
	}
	mux := cmux.New(ln)
	grpcL := mux.MatchWithWriters(cmux.HTTP2MatchHeaderFieldSendSettings("content-type", "application/grpc"))
	httpL := mux.Match(cmux.Any())
	gs := l.cfg.NewGRPC()
	hs := &http.Server{Handler: l.cfg.HTTP, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 3)
	var wg sync.WaitGroup
	// A panic in one of these ends the service, which is restarted.
	wg.Go(func() { errc <- safe.Call(func() error { return gs.Serve(grpcL) }) })
	wg.Go(func() { errc <- safe.Call(func() error { return hs.Serve(httpL) }) })
	wg.Go(func() { errc <- safe.Call(mux.Serve) })
	l.log.Info("Serving CRI", "socket", l.cfg.Path)
	if l.cfg.OnServe != nil {
		l.cfg.OnServe()
	}

	select {
	case <-ctx.Done():
	case err = <-errc:
		if isClosed(err) {
			err = errors.New("socket closed unexpectedly")
		}
	}
	mux.Close()
	l.shutdown(gs, hs)
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// shutdown lets running RPCs and requests finish within the timeout, then
// cuts them off.
func (l *Listener) shutdown(gs *grpc.Server, hs *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.ShutdownTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	if err := hs.Shutdown(ctx); err != nil {
		hs.Close()
	}
	select {
	case <-done:
	case <-ctx.Done():
		l.log.Warn("Cutting off running RPCs", "timeout", l.cfg.ShutdownTimeout)
		gs.Stop()
		<-done
	}
}

func isClosed(err error) bool {
	return err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, cmux.ErrListenerClosed) ||
		errors.Is(err, cmux.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) ||
		errors.Is(err, http.ErrServerClosed)
}
