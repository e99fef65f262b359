package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.podman.io/storage"

	"github.com/arbor-cri/arbor/config"
	"github.com/arbor-cri/arbor/cri"
	"github.com/arbor-cri/arbor/hooks"
	"github.com/arbor-cri/arbor/images"
	"github.com/arbor-cri/arbor/internal/safe"
	"github.com/arbor-cri/arbor/network"
	"github.com/arbor-cri/arbor/oci"
	"github.com/arbor-cri/arbor/oci/spec"
	"github.com/arbor-cri/arbor/store"
)

// runtimeParts are the long-lived parts behind the CRI services.
type runtimeParts struct {
	images  *images.Service
	oci     *oci.Runtime
	network *network.Manager
	store   *store.Store
	host    spec.Host
	hooks   *hooks.Manager
	cdi     *cri.CDI
}

// openRuntime opens storage, the OCI runtime, CNI and the record store
// (LIFECYCLE step 7). The returned close releases storage.
func openRuntime(cfg *config.Config, log *slog.Logger) (*runtimeParts, error) {
	// Storage takes longest to open (the overlay driver probes the
	// kernel), so it opens while the rest is set up.
	type opened struct {
		imgs *images.Service
		err  error
	}
	storageDone := make(chan opened, 1)
	go func() {
		start := time.Now()
		var imgs *images.Service
		err := safe.Call(func() (err error) {
			imgs, err = images.Open(imageConfig(cfg), log.With("component", "images"))
			return err
		})
		log.Debug("Runtime part opened", "part", "storage", "took", time.Since(start))
		storageDone <- opened{imgs, err}
	}()
	parts := &runtimeParts{}
	start := time.Now()
	err := parts.openRest(cfg, log)
	log.Debug("Runtime part opened", "part", "host, oci, cni, records, hooks, cdi", "took", time.Since(start))
	st := <-storageDone
	if st.err != nil {
		return nil, fmt.Errorf("opening image storage: %w", st.err)
	}
	parts.images = st.imgs
	if err != nil {
		st.imgs.Close()
		return nil, err
	}
	return parts, nil
}

func (p *runtimeParts) openRest(cfg *config.Config, log *slog.Logger) error {
	var err error
	if p.host, err = spec.DetectHost(); err != nil {
		return fmt.Errorf("detecting host: %w", err)
	}
	if !p.host.CanSetNegativeOOMScoreAdj {
		log.Warn("No CAP_SYS_RESOURCE: negative OOM score adjustments will be clamped to 0")
	}
	p.oci, err = oci.New(ociConfig(cfg), log.With("component", "oci"))
	if err != nil {
		return fmt.Errorf("setting up the OCI runtime: %w", err)
	}
	p.network, err = network.New(network.Config{
		ConfDir: cfg.Network.CNIConfigDir, PluginDirs: cfg.Network.CNIPluginDirs,
		NetNSDir: filepath.Join(cfg.RunRoot, "netns"), CacheDir: filepath.Join(cfg.Root, "cni-cache"),
	}, log.With("component", "cni"))
	if err != nil {
		return fmt.Errorf("setting up CNI: %w", err)
	}
	p.hooks, err = hooks.New(cfg.Runtime.HooksDirs, log.With("component", "hooks"))
	if err != nil {
		log.Warn("Some OCI hooks were not loaded", "error", err)
	}
	p.cdi, err = cri.NewCDI(cfg.Runtime.CDISpecDirs, log.With("component", "cdi"))
	if err != nil {
		return err
	}
	p.store, err = store.Open(cfg.StateDir())
	return err
}

func (p *runtimeParts) close() error { return p.images.Close() }

func imageConfig(cfg *config.Config) images.Config {
	im := cfg.Image
	return images.Config{
		Root: cfg.StorageRoot(), RunRoot: cfg.StorageRunRoot(), Driver: cfg.Storage.Driver,
		DriverOptions: cfg.Storage.Options, RegistriesConf: im.RegistriesConf,
		RegistriesConfDir: im.RegistriesConfDir, SignaturePolicy: im.SignaturePolicy,
		AuthFile: im.AuthFile, ShortNameMode: im.ShortNameMode,
		PullProgressTimeout: im.PullProgressTimeout.Std(), PinnedImages: im.PinnedImages,
		PauseImage: im.PauseImage,
	}
}

func ociConfig(cfg *config.Config) oci.Config {
	handlers := map[string]oci.Handler{}
	for name, h := range cfg.Runtime.Handlers {
		handlers[name] = oci.Handler{Name: name, RuntimePath: h.RuntimePath, RuntimeRoot: h.RuntimeRoot, RuntimeArgs: h.RuntimeArgs}
	}
	return oci.Config{
		ConmonPath: cfg.Runtime.Conmon, Handlers: handlers, DefaultHandler: cfg.Runtime.DefaultRuntime,
		ExitDir: filepath.Join(cfg.RunRoot, "exits"), AttachDir: filepath.Join(cfg.RunRoot, "attach"),
		StateDir: filepath.Join(cfg.RunRoot, "oci"), LogLevel: cfg.Runtime.ConmonLogLevel,
	}
}

// handlerNames lists the runtime handlers, the default first.
func handlerNames(cfg *config.Config) []string {
	var rest []string
	for name := range cfg.Runtime.Handlers {
		if name != cfg.Runtime.DefaultRuntime {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	return append([]string{cfg.Runtime.DefaultRuntime}, rest...)
}

// restore brings back what an earlier run made (LIFECYCLE step 8).
func (d *Daemon) restore(rt *cri.RuntimeServer, opts cri.RestoreOptions) error {
	start := time.Now()
	rep, err := rt.Restore(context.Background(), opts)
	if err != nil {
		return fmt.Errorf("restoring: %w", err)
	}
	d.log.Info("Restored", "pods", rep.Pods, "containers", rep.Containers, "undone", rep.Undone,
		"finished", rep.Finished, "leftovers_removed", rep.Orphans, "wiped", rep.Wiped, "images_wiped", rep.Images,
		"failed", rep.Failed,
		"took", time.Since(start).Round(time.Microsecond))
	return nil
}

// pauseCommand splits the configured pause command into argv.
func pauseCommand(cfg *config.Config) []string { return strings.Fields(cfg.Image.PauseCommand) }

// Wipe removes every pod, container and image the configuration's
// folders hold, for `arbor wipe`. It refuses to run while a daemon holds
// the run root.
func Wipe(ctx context.Context, cfg *config.Config, log *slog.Logger) (cri.RestoreReport, error) {
	lock, err := lockRunRoot(cfg.RunRoot)
	if err != nil {
		return cri.RestoreReport{}, err
	}
	defer lock.Close()
	parts, err := openRuntime(cfg, log)
	if err != nil {
		return cri.RestoreReport{}, err
	}
	defer parts.close()
	rt := cri.NewRuntimeServer(cri.RuntimeInfo{}, cri.Deps{
		Images: parts.images, OCI: parts.oci, Network: parts.network, Store: parts.store,
		Host: parts.host, RunRoot: cfg.RunRoot,
	}, log)
	return rt.Wipe(ctx)
}

// checkStorage checks storage after an unclean stop and repairs what is
// damaged (removing damaged containers, whose records restore then
// cleans up), as configured.
func checkStorage(st storage.Store, mode string, log *slog.Logger) {
	opts := &storage.CheckOptions{LayerData: true, ImageData: true, ContainerData: true}
	switch mode {
	case "off":
		return
	case "full":
		opts = storage.CheckEverything()
	}
	start := time.Now()
	report, err := st.Check(opts)
	if err != nil {
		log.Error("Storage check failed", "error", err)
		return
	}
	damaged := len(report.Layers) + len(report.ROLayers) + len(report.Images) + len(report.ROImages) + len(report.Containers)
	log.Info("Storage checked after an unclean stop", "mode", mode, "damaged", damaged, "took", time.Since(start).Round(time.Millisecond))
	if damaged == 0 {
		return
	}
	for _, err := range st.Repair(report, storage.RepairEverything()) {
		log.Warn("Storage repair step failed", "error", err)
	}
}
