package cri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/arbor-cri/arbor/fault"
	"github.com/arbor-cri/arbor/store"
)

type recordedCall struct {
	method, code string
}

type callRecorder struct {
	mu    sync.Mutex
	calls []recordedCall
}

func (r *callRecorder) Observe(method string, _ time.Duration, code string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, recordedCall{method, code})
}

type stubStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s stubStream) Context() context.Context { return s.ctx }

// TestBoundary sends each kind of outcome through both interceptors: the
// handler's logger carries the request, a panic becomes Internal and is
// counted, a domain error gets its code, an armed fault fails the call
// before the handler runs, and every call is observed once.
func TestBoundary(t *testing.T) {
	var logs strings.Builder
	faults := fault.New(slog.New(slog.DiscardHandler))
	b := NewBoundary(slog.New(slog.NewTextHandler(&logs, nil)), faults)
	rec := &callRecorder{}
	b.SetObserver(rec)

	cases := []struct {
		name    string
		method  string
		arm     bool
		handler func(ctx context.Context) error
		want    codes.Code
	}{
		{"ok", "Version", false, func(ctx context.Context) error {
			Logger(ctx).Info("inside the handler")
			return nil
		}, codes.OK},
		{"panic", "RunPodSandbox", false, func(context.Context) error { panic("boom") }, codes.Internal},
		{"domain error", "RemovePodSandbox", false, func(context.Context) error {
			return fmt.Errorf("pod abc: %w", store.ErrNotFound)
		}, codes.NotFound},
		{"status kept", "CreateContainer", false, func(context.Context) error {
			return status.Error(codes.InvalidArgument, "bad name")
		}, codes.InvalidArgument},
		{"plain error", "StartContainer", false, func(context.Context) error {
			return errors.New("runc said no")
		}, codes.Internal},
		{"armed fault", "StopContainer", true, func(context.Context) error {
			t.Error("handler ran although a fault was armed")
			return nil
		}, codes.Unavailable},
	}
	for _, stream := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/stream=%v", tc.name, stream), func(t *testing.T) {
				if tc.arm {
					faults.Arm(tc.method, fault.Mode{Kind: fault.Error}, 1)
				}
				full := "/runtime.v1.RuntimeService/" + tc.method
				var err error
				if stream {
					err = b.Stream(nil, stubStream{ctx: context.Background()},
						&grpc.StreamServerInfo{FullMethod: full},
						func(_ any, ss grpc.ServerStream) error { return tc.handler(ss.Context()) })
				} else {
					_, err = b.Unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: full},
						func(ctx context.Context, _ any) (any, error) { return nil, tc.handler(ctx) })
				}
				if got := status.Code(err); got != tc.want {
					t.Fatalf("code %s, want %s (%v)", got, tc.want, err)
				}
				if tc.want != codes.OK {
					if _, ok := status.FromError(err); !ok {
						t.Fatalf("error %v is not a gRPC status", err)
					}
				}
			})
		}
	}

	if got := b.Panics(); got != 2 {
		t.Errorf("panics counted %d, want 2", got)
	}
	if len(rec.calls) != 2*len(cases) {
		t.Errorf("observed %d calls, want %d", len(rec.calls), 2*len(cases))
	}
	out := logs.String()
	for _, want := range []string{
		`msg="inside the handler"`, "method=Version", "request_id=",
		`msg="Handler panicked"`, "panic=boom", "internal error in RunPodSandbox",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
