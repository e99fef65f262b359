package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
)

func TestClassifyPullError(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	// The chain go.podman.io/image builds when a blob download is cut and
	// the reconnect attempt fails: the reconnect error is only text.
	cutBlob := fmt.Errorf("writing blob: %w", fmt.Errorf("storing blob to file %q: %w", "/tmp/x/6",
		fmt.Errorf("happened during read: %w", fmt.Errorf("%w (while reconnecting: %v)", io.ErrUnexpectedEOF, refused))))
	cases := []struct {
		name   string
		err    error
		remote bool
		want   error // sentinel; nil means returned unchanged
	}{
		{name: "blob cut mid-way from a registry", err: cutBlob, remote: true, want: ErrUnavailable},
		{name: "truncated archive", err: fmt.Errorf("reading archive: %w", io.ErrUnexpectedEOF)},
		{name: "connection refused", err: fmt.Errorf("pinging registry: %w", refused), remote: true, want: ErrUnavailable},
		{name: "cancelled", err: fmt.Errorf("copying: %w", context.Canceled), remote: true},
		{name: "already classified", err: fmt.Errorf("%w: x", ErrNotFound), remote: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := classifyPullError(tc.err, "reg.example:5000", tc.remote)
			if tc.want == nil {
				if got != tc.err {
					t.Fatalf("got %v, want the error unchanged", got)
				}
				return
			}
			if !errors.Is(got, tc.want) || !errors.Is(got, tc.err) || !strings.Contains(got.Error(), "reg.example:5000") {
				t.Fatalf("got %v, want %v naming the registry and wrapping the cause", got, tc.want)
			}
		})
	}
}
