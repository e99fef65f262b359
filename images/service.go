package images

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
)

// Service pulls, inspects and removes images in one storage.Store. It is
// safe for concurrent use. Close releases the store.
type Service struct {
	log      *slog.Logger
	store    storage.Store
	settings atomic.Pointer[settings]
	flights  *flightGroup
	janitor  *layerJanitor
	configs  sync.Map // image ID -> *imgspecv1.Image
	close    sync.Once
	// downloads hears of each download; set before serving, then only read.
	downloads DownloadObserver
}

// Open opens (creating if needed) the image store described by cfg.
// When cfg.Driver is "overlay" and overlay cannot be used on the backing
// file system, Open logs why and uses "vfs" instead.
func Open(cfg Config, log *slog.Logger) (*Service, error) {
	cfg = cfg.withDefaults()
	tmpDir := filepath.Join(cfg.Root, "tmp")
	st, err := newSettings(cfg, tmpDir)
	if err != nil {
		return nil, err
	}
	if err := st.logPolicyFallback(log); err != nil {
		return nil, err
	}
	store, err := openStore(cfg, log)
	if err != nil {
		return nil, err
	}
	if err := ensureDir(tmpDir); err != nil {
		shutdownStore(store, log)
		return nil, err
	}
	s := &Service{log: log, store: store, flights: newFlightGroup(log)}
	s.janitor = &layerJanitor{store: store, log: log}
	s.settings.Store(st)
	log.Info("Image store opened", "root", store.GraphRoot(), "run_root", store.RunRoot(),
		"driver", store.GraphDriverName())
	return s, nil
}

// openStore opens the store with the configured driver, falling back from
// overlay to vfs when overlay is not supported here.
func openStore(cfg Config, log *slog.Logger) (storage.Store, error) {
	store, err := getStore(cfg, cfg.Driver)
	if err == nil || cfg.Driver != "overlay" || !overlayUnsupported(err) {
		return store, err
	}
	log.Warn("Overlay storage driver unusable, falling back to vfs", "root", cfg.Root, "error", err)
	return getStore(cfg, "vfs")
}

// getStore opens the store with one driver.
func getStore(cfg Config, driver string) (storage.Store, error) {
	if err := ensureDir(cfg.Root); err != nil {
		return nil, err
	}
	store, err := storage.GetStore(storage.StoreOptions{
		RunRoot:            cfg.RunRoot,
		GraphRoot:          cfg.Root,
		GraphDriverName:    driver,
		GraphDriverOptions: slices.Clone(cfg.DriverOptions),
	})
	if err != nil {
		return nil, fmt.Errorf("opening image store %s with driver %s: %w", cfg.Root, driver, err)
	}
	return store, nil
}

// overlayUnsupported reports whether err says the overlay driver cannot
// work on this kernel or file system (as opposed to a broken store).
func overlayUnsupported(err error) bool {
	return errors.Is(err, graphdriver.ErrNotSupported) ||
		errors.Is(err, graphdriver.ErrPrerequisites) ||
		errors.Is(err, graphdriver.ErrIncompatibleFS)
}

// Store returns the underlying store. The runtime layer creates container
// root file systems from it (CreateContainer with an image ID from Pull
// or Status, then Mount). The store stays owned by the Service.
func (s *Service) Store() storage.Store { return s.store }

// Driver returns the graph driver in use ("overlay" or "vfs").
func (s *Service) Driver() string { return s.store.GraphDriverName() }

// PauseImage returns the configured pause (sandbox) image name.
func (s *Service) PauseImage() string { return s.settings.Load().cfg.PauseImage }

// Close cancels pulls in flight, waits for them and shuts the store down
// without unmounting layers that running containers still use. It is
// idempotent.
func (s *Service) Close() error {
	var err error
	s.close.Do(func() {
		s.flights.close()
		err = shutdownStore(s.store, s.log)
	})
	return err
}

// shutdownStore shuts store down, tolerating layers still mounted.
func shutdownStore(store storage.Store, log *slog.Logger) error {
	layers, err := store.Shutdown(false)
	if errors.Is(err, storage.ErrLayerUsedByContainer) {
		log.Info("Image store closed with mounted layers", "mounted_layers", len(layers))
		return nil
	}
	if err != nil {
		return fmt.Errorf("shutting down image store: %w", err)
	}
	return nil
}

// Reload applies the reloadable parts of cfg (pinned images, pause image,
// registries configuration, short-name mode, signature policy, auth file,
// pull progress timeout), e.g. on SIGHUP. Storage paths and the driver
// cannot change while running; differences are logged and ignored.
func (s *Service) Reload(cfg Config) error {
	cfg = cfg.withDefaults()
	old := s.settings.Load()
	if cfg.Root != old.cfg.Root || cfg.RunRoot != old.cfg.RunRoot || cfg.Driver != old.cfg.Driver ||
		!slices.Equal(cfg.DriverOptions, old.cfg.DriverOptions) {
		s.log.Warn("Storage settings changed, restart to apply", "root", cfg.Root, "driver", cfg.Driver)
	}
	cfg.Root, cfg.RunRoot = old.cfg.Root, old.cfg.RunRoot
	cfg.Driver, cfg.DriverOptions = old.cfg.Driver, old.cfg.DriverOptions
	st, err := newSettings(cfg, old.tmpDir)
	if err != nil {
		return fmt.Errorf("reloading image configuration: %w", err)
	}
	if err := st.logPolicyFallback(s.log); err != nil {
		return fmt.Errorf("reloading image configuration: %w", err)
	}
	sysregistriesv2.InvalidateCache()
	s.settings.Store(st)
	s.log.Info("Image configuration reloaded", "pause_image", cfg.PauseImage,
		"pinned_images", len(cfg.PinnedImages), "registries_conf", cfg.RegistriesConf)
	return nil
}

// cachedConfig returns the OCI config cached for an image ID.
func (s *Service) cachedConfig(id string) (*imgspecv1.Image, bool) {
	v, ok := s.configs.Load(id)
	if !ok {
		return nil, false
	}
	return v.(*imgspecv1.Image), true
}
