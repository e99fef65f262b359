package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	rpprof "runtime/pprof"
	"time"

	"github.com/arbor-cri/arbor/config"
	"github.com/arbor-cri/arbor/internal/safe"
)

// profileServer serves pprof on a loopback TCP address (--profile).
type profileServer struct {
	addr string
	log  *slog.Logger
}

func (p *profileServer) String() string { return "profile" }

func (p *profileServer) Serve(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: p.addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- safe.Call(srv.ListenAndServe) }()
	p.log.Info("Serving pprof", "address", p.addr)
	select {
	case err := <-errc:
		return fmt.Errorf("pprof server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startProfiles starts the CPU profile of --profile-cpu; the returned
// function stops it and writes the heap profile of --profile-mem.
func startProfiles(cfg *config.Config, log *slog.Logger) (func(), error) {
	var cpu *os.File
	if cfg.Profile.CPU != "" {
		f, err := os.Create(cfg.Profile.CPU)
		if err != nil {
			return nil, fmt.Errorf("creating CPU profile: %w", err)
		}
		if err := rpprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("starting CPU profile: %w", err)
		}
		cpu = f
	}
	return func() {
		if cpu != nil {
			rpprof.StopCPUProfile()
			cpu.Close()
			log.Info("CPU profile written", "file", cfg.Profile.CPU)
		}
		if cfg.Profile.Mem != "" {
			writeHeapProfile(cfg.Profile.Mem, log)
		}
	}, nil
}

func writeHeapProfile(path string, log *slog.Logger) {
	f, err := os.Create(path)
	if err != nil {
		log.Error("Cannot write heap profile", "error", err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := rpprof.WriteHeapProfile(f); err != nil {
		log.Error("Cannot write heap profile", "error", err)
		return
	}
	log.Info("Heap profile written", "file", path)
}
