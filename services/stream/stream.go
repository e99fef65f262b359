// Package stream is Arbor's CRI streaming service: the HTTP server the
// kubelet (or crictl) connects to for exec, attach and port-forward after
// the CRI Exec, Attach and PortForward calls returned a single-use URL.
//
// It builds on k8s.io/cri-streaming, which speaks SPDY and websocket and
// keeps the cache of single-use tokens; this package adds input validation
// with gRPC status errors, a Backend interface over Arbor's containers,
// supervised serving with a stable port, and a shutdown that closes every
// open session (hijacked connections the HTTP server forgets) and waits for
// all of their goroutines before Serve returns.
//
// Ready-made helpers do the runtime-specific parts that depend only on oci
// and a network namespace: AttachConmon streams a container's stdio over
// conmon's attach socket and ForwardInNetNS connects a stream to a port on
// localhost inside a pod's network namespace.
package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/arbor-cri/arbor/internal/safe"
	"github.com/arbor-cri/arbor/oci"
)

// Defaults for Config fields left empty.
const (
	DefaultAddress               = "127.0.0.1:0"
	DefaultIdleTimeout           = 4 * time.Hour
	DefaultStreamCreationTimeout = 30 * time.Second
	// sessionGrace is how long sessions get at stop, after their context
	// was cancelled, to report their end to the client before their
	// connections are closed.
	sessionGrace = 2 * time.Second
	// shutdownTimeout bounds how long plain HTTP requests may run at stop.
	shutdownTimeout = 5 * time.Second
)

// Config says where and how the streaming server listens.
type Config struct {
	// Address is host:port to listen on; port 0 picks a free port once at
	// New, kept across restarts so handed-out URLs stay valid. Empty means
	// DefaultAddress.
	Address string
	// TLSCert and TLSKey are PEM files; both set turns on TLS.
	TLSCert, TLSKey string
	// TLSCA is a PEM bundle; when set (with TLS) clients must present a
	// certificate signed by it.
	TLSCA string
	// IdleTimeout closes a streaming connection idle this long; zero means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// StreamCreationTimeout bounds how long a client may take to open its
	// SPDY streams; zero means DefaultStreamCreationTimeout.
	StreamCreationTimeout time.Duration
}

// Service is the supervised streaming server. Its Get* methods may be
// called at any time; the URLs they return work while Serve runs.
type Service struct {
	backend Backend
	log     *slog.Logger
	tls     *tls.Config
	addr    string // host:port with the port resolved
	lib     streaming.Server

	mu  sync.Mutex
	run *run // the serving run, nil while not serving; guarded by mu
}

// New validates cfg, loads its TLS files, picks the port and returns the
// service. backend answers every lookup and runs the streams; a nil log
// discards.
func New(cfg Config, backend Backend, log *slog.Logger) (*Service, error) {
	if backend == nil {
		return nil, errors.New("validating stream config: backend is nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = withDefaults(cfg)
	tlsConf, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	addr, err := resolveAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	s := &Service{backend: backend, log: log, tls: tlsConf, addr: addr}
	s.lib, err = streaming.NewServer(s.libConfig(cfg), &adapter{s: s})
	if err != nil {
		return nil, fmt.Errorf("building streaming server: %w", err)
	}
	return s, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.StreamCreationTimeout == 0 {
		cfg.StreamCreationTimeout = DefaultStreamCreationTimeout
	}
	return cfg
}

func (s *Service) libConfig(cfg Config) streaming.Config {
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	return streaming.Config{
		Addr:                            s.addr,
		BaseURL:                         &url.URL{Scheme: scheme, Host: s.addr},
		StreamIdleTimeout:               cfg.IdleTimeout,
		StreamCreationTimeout:           cfg.StreamCreationTimeout,
		SupportedRemoteCommandProtocols: remotecommand.SupportedStreamingProtocols,
		SupportedPortForwardProtocols:   portforward.SupportedProtocols,
		TLSConfig:                       s.tls,
	}
}

// resolveAddress returns address with port 0 replaced by a port that was
// free a moment ago.
func resolveAddress(address string) (string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return "", fmt.Errorf("parsing stream address %q: %w", address, err)
	}
	if port != "0" {
		return address, nil
	}
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return "", fmt.Errorf("picking a free stream port: %w", err)
	}
	defer ln.Close()
	_, port, err = net.SplitHostPort(ln.Addr().String())
	if err != nil {
		return "", fmt.Errorf("reading picked stream port: %w", err)
	}
	return net.JoinHostPort(host, port), nil
}

// Address is the host:port the service listens on (port resolved).
func (s *Service) Address() string { return s.addr }

// String names the service in the supervisor tree.
func (s *Service) String() string { return "stream" }

// Serve listens and serves until ctx is cancelled or the listener fails.
// On return every streaming session has been closed, every backend call has
// returned and every goroutine the service started has ended.
func (s *Service) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listening for streams: %w", err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	r := newRun(ctx, s.log)
	s.setRun(r)
	defer s.setRun(nil)
	srv := s.httpServer(r)
	errc := make(chan error, 1)
	go func() { errc <- safe.Call(func() error { return srv.Serve(ln) }) }()
	s.log.Info("Serving streams", "address", s.addr, "tls", s.tls != nil)

	select {
	case <-ctx.Done():
		s.stop(r, srv)
		<-errc // http.ErrServerClosed
		return nil
	case err = <-errc:
		s.stop(r, srv)
		return fmt.Errorf("serving streams: %w", err)
	}
}

// stop ends a run: sessions are cancelled and, after a grace period,
// their connections closed; plain requests get a bounded grace period;
// then every tracked goroutine is awaited.
func (s *Service) stop(r *run, srv *http.Server) {
	r.stop(sessionGrace)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
	r.wait()
	s.log.Info("Stopped serving streams", "address", s.addr)
}

func (s *Service) httpServer(r *run) *http.Server {
	return &http.Server{
		Handler:           r.handler(s.lib),
		ConnContext:       withConn,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// SPDY upgrades need HTTP/1.1; an empty map turns off HTTP/2.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
}

func (s *Service) setRun(r *run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run = r
}

func (s *Service) activeRun() (*run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == nil {
		return nil, errStopped
	}
	return s.run, nil
}

// errStopped is returned for a stream that arrives while no run serves.
var errStopped = errors.New("stream service is stopped")

// sizes converts the library's resize events into oci sizes until in
// closes or ctx ends; the returned channel is closed then.
func sizes(ctx context.Context, r *run, in <-chan remotecommand.TerminalSize) (<-chan oci.Size, error) {
	if in == nil {
		return nil, nil
	}
	out := make(chan oci.Size)
	err := r.goTracked("exec resize", func() {
		defer close(out)
		for sz := range in {
			select {
			case out <- oci.Size{Width: sz.Width, Height: sz.Height}:
			case <-ctx.Done():
				return
			}
		}
	})
	return out, err
}

// pipeStdin puts a pipe between the client's stdin stream and the backend,
// so that the backend's readers can be released by closing the pipe even
// while the stream still blocks. The copying goroutine belongs to r.
func pipeStdin(r *run, in io.Reader) (io.ReadCloser, error) {
	if in == nil {
		return nil, nil
	}
	pr, pw := io.Pipe()
	err := r.goTracked("stdin copy", func() {
		_, err := io.Copy(pw, in)
		pw.CloseWithError(err)
	})
	if err != nil {
		pr.Close()
		return nil, err
	}
	return pr, nil
}
