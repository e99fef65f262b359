package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/arbor-cri/arbor/internal/safe"
	"github.com/arbor-cri/arbor/services/listener"
)

// ErrNotLoopback means a TCP address that is not loopback was given
// without AllowNonLoopback.
var ErrNotLoopback = errors.New("address is not loopback")

// shutdownTimeout bounds how long running scrapes may take at stop.
const shutdownTimeout = 5 * time.Second

// ParseAddress returns the network ("tcp" or "unix") and address to
// listen on. A TCP host must be a loopback IP or "localhost" unless
// allowNonLoopback; an empty host means every interface.
func ParseAddress(addr string, allowNonLoopback bool) (network, address string, err error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok || strings.HasPrefix(addr, "/") {
		if !ok {
			path = addr
		}
		if !strings.HasPrefix(path, "/") {
			return "", "", fmt.Errorf("metrics address %q: a unix socket path must be absolute", addr)
		}
		return "unix", path, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if !allowNonLoopback && !isLoopback(host) {
		return "", "", fmt.Errorf("metrics address %q: %w (set allow_non_loopback to serve it)", addr, ErrNotLoopback)
	}
	return "tcp", addr, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// String names the service in the supervisor tree.
func (m *Metrics) String() string { return "metrics" }

// Serve listens on the address and serves /metrics until ctx is
// cancelled, then lets running scrapes finish for a short while. With an
// event broker it also counts OOM kills from container stop events.
func (m *Metrics) Serve(ctx context.Context) error {
	ln, err := m.listen()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	// A panic in either goroutine ends the service, which is restarted.
	errc := make(chan error, 2)
	if m.cfg.Events != nil {
		wg.Go(func() {
			if err := safe.Run(m.log, "OOM kill counter", func() { m.countOOMKills(ctx) }); err != nil {
				errc <- err
			}
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	wg.Go(func() { errc <- safe.Call(func() error { return srv.Serve(ln) }) })
	m.log.Info("Serving metrics", "address", m.addr)
	select {
	case <-ctx.Done():
		return shutdown(srv)
	case err := <-errc:
		return fmt.Errorf("serving metrics: %w", err)
	}
}

// listen opens the TCP port or the unix socket (replacing a stale one).
func (m *Metrics) listen() (net.Listener, error) {
	if m.network == "unix" {
		return listener.Listen(m.addr)
	}
	ln, err := net.Listen("tcp", m.addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", m.addr, err)
	}
	return ln, nil
}

// shutdown stops the server, cutting off scrapes that outlast the timeout.
func shutdown(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
	return nil
}
