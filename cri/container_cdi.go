package cri

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"
)

// CDI resolves Container Device Interface device names ("vendor.com/class=dev")
// against the CDI spec files of its folders and injects the devices'
// edits (device nodes, environment, mounts, hooks) into OCI specs. The
// folders are read again at every injection that asks for a device, so
// spec files added while the daemon runs are seen without a watcher.
type CDI struct {
	cache *cdi.Cache
	log   *slog.Logger
}

// NewCDI returns a resolver over the spec files in dirs, later folders
// taking precedence over earlier ones for the same device. Missing folders
// are fine: they simply hold no devices.
func NewCDI(dirs []string, log *slog.Logger) (*CDI, error) {
	cache, err := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false))
	if err != nil {
		return nil, fmt.Errorf("opening CDI spec folders: %w", err)
	}
	return &CDI{cache: cache, log: log}, nil
}

// Inject rereads the spec folders and applies the edits of every named
// device to sp. A device that no spec file defines is an InvalidArgument
// error naming it, and sp is then left unchanged; any other failure
// (a device node missing on the host, say) is an error too.
func (r *CDI) Inject(sp *rspec.Spec, devices []string) error {
	if len(devices) == 0 {
		return nil
	}
	if err := r.cache.Refresh(); err != nil {
		r.log.Warn("Some CDI spec files were not loaded", "error", err)
	}
	unresolved, err := r.cache.InjectDevices(sp, devices...)
	if len(unresolved) > 0 {
		return status.Errorf(codes.InvalidArgument, "unknown CDI devices: %s", strings.Join(unresolved, ", "))
	}
	if err != nil {
		return fmt.Errorf("injecting CDI devices: %w", err)
	}
	return nil
}

// cdiDevices lists the CDI devices a container asks for, through its CDI
// device list and its cdi.k8s.io/* annotations, sorted and without
// duplicates. A name that is not fully qualified is an InvalidArgument
// error.
func cdiDevices(cfg *runtimeapi.ContainerConfig) ([]string, error) {
	var names []string
	for i, d := range cfg.GetCDIDevices() {
		name := d.GetName()
		if _, _, _, err := parser.ParseQualifiedName(name); err != nil {
			return nil, invalid(fmt.Sprintf("config.cdi_devices[%d]", i), "%v", err)
		}
		names = append(names, name)
	}
	_, annotated, err := cdi.ParseAnnotations(cfg.GetAnnotations())
	if err != nil {
		return nil, invalid("config.annotations", "%v", err)
	}
	names = append(names, annotated...)
	sort.Strings(names)
	return slices.Compact(names), nil
}

// injectCDIDevices adds the container's CDI devices to its spec. Asking
// for a device while no CDI folders are configured is an InvalidArgument
// error.
func (s *RuntimeServer) injectCDIDevices(ctx context.Context, cfg *runtimeapi.ContainerConfig, id string, sp *rspec.Spec) error {
	devices, err := cdiDevices(cfg)
	if err != nil || len(devices) == 0 {
		return err
	}
	if s.CDI == nil {
		return status.Errorf(codes.InvalidArgument, "unknown CDI devices: %s (CDI is not configured)", strings.Join(devices, ", "))
	}
	if err := s.CDI.Inject(sp, devices); err != nil {
		return err
	}
	Logger(ctx).Info("CDI devices injected", "container_id", id, "devices", devices)
	return nil
}
