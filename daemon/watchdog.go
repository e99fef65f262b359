package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// watchdog pings systemd's watchdog only while a CRI Status call over the
// daemon's own socket succeeds, so that a wedged daemon gets restarted.
type watchdog struct {
	socket   string
	interval time.Duration
	log      *slog.Logger
}

func (w *watchdog) String() string { return "watchdog" }

func (w *watchdog) Serve(ctx context.Context) error {
	conn, err := grpc.NewClient("unix://"+w.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dialing own socket: %w", err)
	}
	defer conn.Close()
	client := runtimeapi.NewRuntimeServiceClient(conn)
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, w.interval)
		_, err := client.Status(cctx, &runtimeapi.StatusRequest{})
		cancel()
		if err != nil {
			w.log.Warn("Watchdog check failed, not pinging", "error", err)
			continue
		}
		_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
	}
}
