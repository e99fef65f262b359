package cri

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/arbor-cri/arbor/fault"
	"github.com/arbor-cri/arbor/internal/safe"
)

// Boundary is the one place where every CRI call enters the daemon: it
// gives the call a request ID and a logger, fires injected faults, turns a
// panic into codes.Internal, maps domain errors to status codes, and logs
// the call once (state-changing calls at Info, polling calls at Debug).
type Boundary struct {
	log      *slog.Logger
	faults   *fault.Injector
	panics   atomic.Int64
	observer Observer
}

// Observer records each CRI call, for metrics.
type Observer interface {
	Observe(method string, took time.Duration, code string)
}

// SetObserver makes every call reported to o; call it before serving.
func (b *Boundary) SetObserver(o Observer) { b.observer = o }

// NewBoundary returns the interceptors' shared state.
func NewBoundary(log *slog.Logger, faults *fault.Injector) *Boundary {
	return &Boundary{log: log, faults: faults}
}

// Panics is how many handler panics were recovered.
func (b *Boundary) Panics() int64 { return b.panics.Load() }

type loggerKey struct{}

// Logger returns the request's logger, carrying its ID and method.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// Unary is the unary server interceptor.
func (b *Boundary) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	method, log, leave := b.enter(info.FullMethod)
	defer leave(&err)
	ctx = context.WithValue(ctx, loggerKey{}, log)
	if err := b.inject(ctx, method); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// Stream is the stream server interceptor.
func (b *Boundary) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	method, log, leave := b.enter(info.FullMethod)
	defer leave(&err)
	ctx := context.WithValue(ss.Context(), loggerKey{}, log)
	if err := b.inject(ctx, method); err != nil {
		return err
	}
	return handler(srv, &loggedStream{ServerStream: ss, ctx: ctx})
}

// enter starts one call: it names the method, gives the call a logger
// with its own request ID, and returns what the caller must defer. That
// turns a panic into Internal, any error into a status, and logs the call.
func (b *Boundary) enter(fullMethod string) (method string, log *slog.Logger, leave func(*error)) {
	method = fullMethod[strings.LastIndex(fullMethod, "/")+1:]
	log = b.log.With("request_id", newRequestID(), "method", method)
	start := time.Now()
	return method, log, func(err *error) {
		if r := recover(); r != nil {
			*err = b.recovered(log, method, r)
		}
		*err = toStatus(*err)
		b.logCall(log, method, time.Since(start), *err)
	}
}

// inject fires a fault armed for method, if any.
func (b *Boundary) inject(ctx context.Context, method string) error {
	if m, ok := b.faults.Take(method); ok {
		return fault.Fire(ctx, method, m)
	}
	return nil
}

type loggedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *loggedStream) Context() context.Context { return s.ctx }

func (b *Boundary) recovered(log *slog.Logger, method string, r any) error {
	b.panics.Add(1)
	p := safe.Recovered(r) // a panic raised again from one of the handler's goroutines keeps its stack
	log.Error("Handler panicked", "panic", fmt.Sprint(p.Value), "stack", string(p.Stack))
	return status.Errorf(codes.Internal, "internal error in %s: %v", method, p.Value)
}

func (b *Boundary) logCall(log *slog.Logger, method string, took time.Duration, err error) {
	code := status.Code(err)
	if b.observer != nil {
		b.observer.Observe(method, took, code.String())
	}
	attrs := []any{"latency_ms", float64(took.Microseconds()) / 1000, "code", code.String()}
	switch {
	case err != nil && code != codes.NotFound && code != codes.Unimplemented:
		log.Warn("CRI call failed", append(attrs, "error", status.Convert(err).Message())...)
	case isPolling(method):
		log.Debug("CRI call", attrs...)
	default:
		log.Info("CRI call", attrs...)
	}
}

// isPolling reports whether a method is one the kubelet calls in loops, so
// that it logs at Debug and the daemon stays quiet at Info.
func isPolling(method string) bool {
	for _, p := range []string{"List", "Stream", "Version", "Status", "Stats", "ImageFsInfo", "RuntimeConfig", "GetContainerEvents", "ExecSync"} {
		if strings.HasPrefix(method, p) || strings.HasSuffix(method, p) {
			return true
		}
	}
	return false
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
