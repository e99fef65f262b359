// Package daemon assembles Arbor: it does the start-up work of
// LIFECYCLE.md, builds the supervisor tree with its services, handles
// signals and stops everything in order. cmd/arbor only parses the
// command line and hands over a loaded configuration.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/config"
	"github.com/arbor-cri/arbor/cri"
	"github.com/arbor-cri/arbor/events"
	"github.com/arbor-cri/arbor/fault"
	"github.com/arbor-cri/arbor/internal/safe"
	"github.com/arbor-cri/arbor/nri"
	"github.com/arbor-cri/arbor/services/exitmonitor"
	"github.com/arbor-cri/arbor/services/hookwatcher"
	"github.com/arbor-cri/arbor/services/listener"
	"github.com/arbor-cri/arbor/services/metrics"
	"github.com/arbor-cri/arbor/services/stream"
	"github.com/arbor-cri/arbor/stats"
	"github.com/arbor-cri/arbor/supervisor"
	"github.com/arbor-cri/arbor/tracing"
	"github.com/arbor-cri/arbor/version"
)

// traceFlushTimeout bounds sending the last spans at stop: enough for a
// live collector on a busy machine, short enough that one that is down
// holds the stop up only a little.
const traceFlushTimeout = 3 * time.Second

// Options are what cmd/arbor hands to the daemon.
type Options struct {
	Config *config.Loaded
	// Reload reads the configuration again, with the same files and flags,
	// for SIGHUP.
	Reload func() (*config.Loaded, error)
	Log    *slog.Logger
	Level  *slog.LevelVar
}

// Daemon is one run of Arbor.
type Daemon struct {
	opts      Options
	log       *slog.Logger
	cfg       atomic.Pointer[config.Config]
	faults    *fault.Injector
	tree      *supervisor.Tree
	boundary  *cri.Boundary
	parts     *runtimeParts
	runtime   *cri.RuntimeServer
	imageSrv  *cri.ImageServer
	stream    *stream.Service
	ready     sync.Once
	collector *stats.Collector
	metrics   *metrics.Metrics
	nri       *nri.Manager
	events    *events.ContainerBroker
	tracer    trace.Tracer
}

// New returns a daemon for the loaded configuration.
func New(opts Options) *Daemon {
	d := &Daemon{opts: opts, log: opts.Log}
	d.cfg.Store(&opts.Config.Config)
	if opts.Config.Config.EnableFaultInjection {
		d.faults = fault.New(opts.Log.With("component", "fault"))
		d.log.Warn("Fault injection is enabled: POST /debug/fault on the socket can crash this daemon")
	}
	return d
}

func (d *Daemon) config() *config.Config { return d.cfg.Load() }

// Run starts the daemon and serves until SIGTERM or SIGINT (a clean stop,
// nil) or a fatal error in the tree.
func (d *Daemon) Run(ctx context.Context) error {
	cfg := d.config()
	stopProfiles, err := startProfiles(cfg, d.log)
	if err != nil {
		return err
	}
	defer stopProfiles()
	lock, clean, err := prepare(cfg, d.log)
	if err != nil {
		return err
	}
	defer lock.Close()
	setThreadLimit(d.log)
	tracer, stopTracing, err := tracing.Setup(ctx, cfg.Tracing, d.log.With("component", "tracing"))
	if err != nil {
		return fmt.Errorf("setting up tracing: %w", err)
	}
	defer d.flushTraces(stopTracing)
	d.tracer = tracer

	if err := d.openServices(cfg, readBootState(cfg, d.log), clean); err != nil {
		return err
	}
	defer func() {
		d.runtime.Close()
		if err := d.parts.close(); err != nil {
			d.log.Warn("Closing storage", "error", err)
		}
	}()
	d.buildTree(cfg)
	treeCtx, cancelTree := context.WithCancel(ctx)
	defer cancelTree()
	sigs := catchSignals() // before the listener serves
	treeDone := make(chan error, 1)
	go func() { treeDone <- safe.Call(func() error { return d.tree.Serve(treeCtx) }) }()

	if err := d.waitForStop(ctx, treeDone, sigs); err != nil {
		return err
	}
	d.stop(cancelTree, treeDone)
	if err := writeCleanShutdownMarker(cfg.CleanShutdownFile()); err != nil {
		return fmt.Errorf("writing clean-shutdown marker: %w", err)
	}
	d.log.Info("Stopped cleanly")
	return nil
}

// openServices opens the runtime's parts, builds the CRI services and
// restores what an earlier run left.
func (d *Daemon) openServices(cfg *config.Config, boot bootState, clean bool) error {
	parts, err := openRuntime(cfg, d.log)
	if err != nil {
		return err
	}
	d.parts = parts
	if !clean {
		checkStorage(parts.images.Store(), cfg.Storage.CheckAfterCrash, d.log)
	}
	d.collector = stats.NewCollector(stats.Options{
		Layers: stats.StorageLayers{Store: parts.images.Store()}, FsInterval: cfg.Observe.StatsFsInterval.Std(),
	}, d.log.With("component", "stats"))
	d.events = events.NewContainerBroker(cfg.Observe.EventsBuffer, d.log.With("component", "events"))
	d.runtime = cri.NewRuntimeServer(cri.RuntimeInfo{
		Version:  version.Get().Version,
		Handlers: handlerNames(cfg),
		Verbose:  d.verboseInfo,
	}, cri.Deps{
		Images: parts.images, OCI: parts.oci, Network: parts.network, Store: parts.store,
		Host: parts.host, Faults: d.faults, RunRoot: cfg.RunRoot, PauseCommand: pauseCommand(cfg),
		Hooks: parts.hooks, CDI: parts.cdi,
		Stats: d.collector, Events: d.events, Tracer: d.tracer,
	}, d.log.With("component", "runtime"))
	if cfg.NRI.Enable {
		d.nri, err = nri.New(nri.Config{
			SocketPath: cfg.NRI.SocketPath, PluginDir: cfg.NRI.PluginDir, PluginConfigDir: cfg.NRI.PluginConfigDir,
			RegistrationTimeout: cfg.NRI.RegistrationTimeout.Std(), RequestTimeout: cfg.NRI.RequestTimeout.Std(),
		}, d.runtime, "arbor", version.Get().Version, d.log.With("component", "nri"))
		if err != nil {
			parts.close()
			return err
		}
		d.runtime.NRI = d.nri
	}
	d.imageSrv = cri.NewImageServer(parts.images, d.log.With("component", "images"))
	st := cfg.Stream
	d.stream, err = stream.New(stream.Config{
		Address: net.JoinHostPort(st.Address, strconv.Itoa(st.Port)), TLSCert: st.TLSCert, TLSKey: st.TLSKey,
		TLSCA: st.TLSCA, IdleTimeout: st.IdleTimeout.Std(),
	}, d.runtime, d.log.With("component", "stream"))
	if err != nil {
		parts.close()
		return fmt.Errorf("setting up the streaming server: %w", err)
	}
	d.runtime.SetStreamer(d.stream)
	if cfg.Metrics.Enable {
		d.metrics, err = metrics.New(metrics.Config{
			Address: cfg.Metrics.Address(), AllowNonLoopback: cfg.Metrics.AllowNonLoopback,
			States: func() []supervisor.ServiceState { return d.tree.States().Snapshot() }, Events: d.events,
		}, d.log.With("component", "metrics"))
		if err != nil {
			parts.close()
			return fmt.Errorf("setting up metrics: %w", err)
		}
		d.imageSrv.SetPullObserver(d.metrics)
		parts.images.SetDownloadObserver(d.metrics)
	}
	opts := cri.RestoreOptions{Rebooted: boot.rebooted, WipeImages: boot.upgraded && cfg.Storage.WipeImagesOnUpgrade}
	if err := d.restore(d.runtime, opts); err != nil {
		parts.close()
		return err
	}
	if err := writeVersionFiles(cfg); err != nil {
		parts.close()
		return fmt.Errorf("writing version files: %w", err)
	}
	return nil
}

// buildTree lays out the failure domains: the CRI listener alone in "core"
// so that nothing else's backoff can pause it, and debugging aids apart.
func (d *Daemon) buildTree(cfg *config.Config) {
	sv := cfg.Supervisor
	d.tree = supervisor.New(d.log.With("component", "supervisor"), supervisor.Backoff{
		Threshold: sv.FailureThreshold, Decay: sv.FailureDecay.Std(),
		Backoff: sv.FailureBackoff.Std(), StopTimeout: sv.StopTimeout.Std(),
	}, d.faults)
	d.boundary = cri.NewBoundary(d.log.With("component", "cri"), d.faults)
	if d.metrics != nil {
		d.boundary.SetObserver(d.metrics)
	}

	core := d.tree.Domain("core")
	core.Add(listener.New(listener.Config{
		Path:            cfg.API.Listen,
		NewGRPC:         d.newGRPC,
		HTTP:            d.httpHandler(),
		ShutdownTimeout: cfg.API.ShutdownTimeout.Std(),
		OnServe:         d.onServe,
	}, d.log.With("component", "listener")))
	if interval, err := daemon.SdWatchdogEnabled(false); err == nil && interval > 0 {
		core.Add(&watchdog{socket: cfg.API.Listen, interval: interval / 2, log: d.log})
	}
	// The streaming server has its own domain: a fault in it, or its
	// backoff, never touches the CRI socket.
	d.tree.Domain("stream").Add(d.stream)
	monitors := d.tree.Domain("monitors")
	exits := exitmonitor.New(filepath.Join(cfg.RunRoot, "exits"), d.runtime.ContainerExited,
		d.log.With("component", "exit-monitor"))
	exits.Sweep = d.runtime.SweepLostMonitors
	monitors.Add(exits)
	monitors.Add(d.parts.network)
	monitors.Add(hookwatcher.New(d.parts.hooks, 0, d.log.With("component", "hooks")))
	monitors.Add(d.collector)
	if d.nri != nil {
		// Its own domain: plugins that keep failing never pause the monitors.
		d.tree.Domain("nri").Add(d.nri)
	}
	if d.metrics != nil {
		d.tree.Domain("metrics").Add(d.metrics)
	}
	if cfg.Profile.Enable {
		d.tree.Domain("debug").Add(&profileServer{addr: fmt.Sprintf("%s:%d", cfg.Profile.Address, cfg.Profile.Port), log: d.log})
	}
}

// newGRPC builds a gRPC server with the CRI services and the boundary
// interceptors; the listener calls it on each run.
func (d *Daemon) newGRPC() *grpc.Server {
	cfg := d.config()
	opts := []grpc.ServerOption{
		grpc.MaxSendMsgSize(cfg.API.GRPCMaxSendMsgSize),
		grpc.MaxRecvMsgSize(cfg.API.GRPCMaxRecvMsgSize),
		grpc.ChainUnaryInterceptor(d.boundary.Unary),
		grpc.ChainStreamInterceptor(d.boundary.Stream),
	}
	if cfg.Tracing.Enable {
		// A span per CRI call, under the caller's trace if it sent one.
		opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler()))
	}
	gs := grpc.NewServer(opts...)
	runtimeapi.RegisterRuntimeServiceServer(gs, d.runtime)
	runtimeapi.RegisterImageServiceServer(gs, d.imageSrv)
	return gs
}

func (d *Daemon) onServe() {
	d.ready.Do(func() {
		if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
			d.log.Debug("sd_notify failed", "error", err)
		}
		d.log.Info("Arbor is ready", "socket", d.config().API.Listen, "version", version.Get().Version)
	})
}

// stop cascades a graceful stop down the tree: services in reverse start
// order, each with its timeout, then the root.
func (d *Daemon) stop(cancelTree context.CancelFunc, treeDone <-chan error) {
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	d.events.Close()
	start := time.Now()
	if stuck := d.tree.Stop(); len(stuck) > 0 {
		d.log.Error("Services stuck at stop", "services", stuck)
	}
	cancelTree()
	if err := <-treeDone; err != nil && !errors.Is(err, context.Canceled) {
		d.log.Warn("Supervisor tree ended with an error", "error", err)
	}
	d.log.Info("Services stopped", "took", time.Since(start).Round(time.Millisecond))
}

// flushTraces exports the spans still buffered and closes the exporter,
// giving up after the stop timeout (a collector that is down).
func (d *Daemon) flushTraces(shutdown func(context.Context) error) {
	// Short: a collector that is down must not hold up the stop.
	ctx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		d.log.Warn("Traces not flushed", "error", err)
	}
}

func (d *Daemon) verboseInfo() map[string]string {
	cfg := d.config()
	return map[string]string{
		"version": jsonString(version.Get()),
		"config":  jsonString(cfg),
		"tree":    jsonString(d.tree.States().Snapshot()),
	}
}

// forceExit ends the process after a second stop signal.
func forceExit(log *slog.Logger) {
	log.Error("Second signal: exiting at once")
	os.Exit(1)
}
