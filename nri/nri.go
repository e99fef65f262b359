// Package nri connects the daemon to Node Resource Interface plugins
// (github.com/containerd/nri): it relays pod and container lifecycle
// events to them, returns the adjustments they ask for, and keeps a plugin
// that connects late in step with the pods and containers that exist.
//
// A nil *Manager is valid and does nothing, which is what the daemon uses
// when NRI is off.
package nri

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
)

// Runtime is what plugins need from the daemon: the current pods and
// containers, and applying the container updates plugins ask for outside
// of any CRI call. It is the CRI layer.
type Runtime interface {
	// Snapshot lists the pods and containers that exist now.
	Snapshot(ctx context.Context) ([]*api.PodSandbox, []*api.Container)
	// UpdateContainers applies updates and returns the ones that failed.
	UpdateContainers(ctx context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error)
}

// Config says where plugins connect and where the daemon finds those it
// starts itself.
type Config struct {
	SocketPath      string
	PluginDir       string
	PluginConfigDir string
	// RegistrationTimeout and RequestTimeout bound a plugin's registration
	// and each of its answers; zero keeps the library's defaults. They are
	// process-wide settings of the NRI library.
	RegistrationTimeout time.Duration
	RequestTimeout      time.Duration
}

// Manager owns the NRI adaptation.
type Manager struct {
	a      *adaptation.Adaptation
	socket string
	log    *slog.Logger
}

// New creates a manager; Start begins serving plugins.
func New(cfg Config, rt Runtime, name, version string, log *slog.Logger) (*Manager, error) {
	sync := func(ctx context.Context, cb adaptation.SyncCB) error {
		pods, ctrs := rt.Snapshot(ctx)
		updates, err := cb(ctx, pods, ctrs)
		if err != nil {
			return err
		}
		if len(updates) > 0 {
			if failed, err := rt.UpdateContainers(ctx, updates); err != nil || len(failed) > 0 {
				return fmt.Errorf(
					"applying %d plugin updates at synchronization: %d failed: %v",
					len(updates),
					len(failed),
					err,
				)
			}
		}
		return nil
	}
	if cfg.RegistrationTimeout > 0 {
		adaptation.SetPluginRegistrationTimeout(cfg.RegistrationTimeout)
	}
	if cfg.RequestTimeout > 0 {
		adaptation.SetPluginRequestTimeout(cfg.RequestTimeout)
	}
	a, err := adaptation.New(name, version, sync, rt.UpdateContainers,
		adaptation.WithSocketPath(cfg.SocketPath),
		adaptation.WithPluginPath(cfg.PluginDir),
		adaptation.WithPluginConfigPath(cfg.PluginConfigDir))
	if err != nil {
		return nil, fmt.Errorf("creating NRI adaptation: %w", err)
	}
	return &Manager{a: a, socket: cfg.SocketPath, log: log}, nil
}

// Start launches the plugins in the plugin folder and listens for
// external ones on the socket.
func (m *Manager) Start() error {
	if m == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(m.socket), 0o755); err != nil {
		return fmt.Errorf("creating NRI socket folder: %w", err)
	}
	if err := m.a.Start(); err != nil {
		return fmt.Errorf("starting NRI: %w", err)
	}
	return nil
}

// Stop closes the socket and every plugin connection.
func (m *Manager) Stop() {
	if m != nil {
		m.a.Stop()
	}
}

// BlockSync keeps a plugin that connects now from completing its
// synchronization until the returned function is called: a create calls
// it first and releases it once the new object is listed, so a
// late plugin sees the object either in its snapshot or as an event.
func (m *Manager) BlockSync() (release func()) {
	if m == nil {
		return func() {}
	}
	b := m.a.BlockPluginSync()
	return b.Unblock
}

// RunPodSandbox tells plugins a pod is being started; an error fails it.
func (m *Manager) RunPodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	if m == nil {
		return nil
	}
	return m.a.RunPodSandbox(ctx, &api.RunPodSandboxRequest{Pod: pod})
}

// StopPodSandbox tells plugins a pod was stopped.
func (m *Manager) StopPodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	if m == nil {
		return nil
	}
	return m.a.StopPodSandbox(ctx, &api.StopPodSandboxRequest{Pod: pod})
}

// RemovePodSandbox tells plugins a pod was removed.
func (m *Manager) RemovePodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	if m == nil {
		return nil
	}
	return m.a.RemovePodSandbox(ctx, &api.RemovePodSandboxRequest{Pod: pod})
}

// CreateContainer asks plugins for adjustments to a container being
// created and for updates to other containers.
func (m *Manager) CreateContainer(
	ctx context.Context,
	pod *api.PodSandbox,
	ctr *api.Container,
) (*api.CreateContainerResponse, error) {
	if m == nil {
		return &api.CreateContainerResponse{}, nil
	}
	return m.a.CreateContainer(ctx, &api.CreateContainerRequest{Pod: pod, Container: ctr})
}

// PostCreateContainer tells plugins a container was created.
func (m *Manager) PostCreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	if m == nil {
		return nil
	}
	return m.a.PostCreateContainer(ctx, &api.PostCreateContainerRequest{Pod: pod, Container: ctr})
}

// StartContainer tells plugins a container is being started; an error
// fails the start.
func (m *Manager) StartContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	if m == nil {
		return nil
	}
	return m.a.StartContainer(ctx, &api.StartContainerRequest{Pod: pod, Container: ctr})
}

// PostStartContainer tells plugins a container was started.
func (m *Manager) PostStartContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	if m == nil {
		return nil
	}
	return m.a.PostStartContainer(ctx, &api.PostStartContainerRequest{Pod: pod, Container: ctr})
}

// UpdateContainer asks plugins about new resources for a container; the
// answer carries their changes to it and updates to others.
func (m *Manager) UpdateContainer(
	ctx context.Context,
	pod *api.PodSandbox,
	ctr *api.Container,
	res *api.LinuxResources,
) (*api.UpdateContainerResponse, error) {
	if m == nil {
		return &api.UpdateContainerResponse{}, nil
	}
	return m.a.UpdateContainer(
		ctx,
		&api.UpdateContainerRequest{Pod: pod, Container: ctr, LinuxResources: res},
	)
}

// PostUpdateContainer tells plugins a container's resources changed.
func (m *Manager) PostUpdateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	if m == nil {
		return nil
	}
	return m.a.PostUpdateContainer(ctx, &api.PostUpdateContainerRequest{Pod: pod, Container: ctr})
}

// StopContainer tells plugins a container stopped (asked to, or on its
// own); their answer may update other containers.
func (m *Manager) StopContainer(
	ctx context.Context,
	pod *api.PodSandbox,
	ctr *api.Container,
) (*api.StopContainerResponse, error) {
	if m == nil {
		return &api.StopContainerResponse{}, nil
	}
	return m.a.StopContainer(ctx, &api.StopContainerRequest{Pod: pod, Container: ctr})
}

// RemoveContainer tells plugins a container was removed.
func (m *Manager) RemoveContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	if m == nil {
		return nil
	}
	return m.a.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: pod, Container: ctr})
}

// String names the service in the supervisor tree.
func (m *Manager) String() string { return "nri" }

// Serve runs NRI as a supervised service: it starts the plugins and the
// socket, and stops them when ctx is cancelled, then returns nil. A
// failed start (a socket that cannot be made) is an error, and the
// supervisor retries with backoff; events sent meanwhile reach no plugin.
func (m *Manager) Serve(ctx context.Context) error {
	if err := m.Start(); err != nil {
		m.Stop() // a start that failed half-way may have started plugins
		return err
	}
	m.log.Info("Serving NRI plugins", "socket", m.socket)
	<-ctx.Done()
	m.Stop()
	return nil
}

// UpdatePodSandbox tells plugins a pod's resources are changing; an error
// fails the update.
func (m *Manager) UpdatePodSandbox(
	ctx context.Context,
	pod *api.PodSandbox,
	overhead, res *api.LinuxResources,
) error {
	if m == nil {
		return nil
	}
	_, err := m.a.UpdatePodSandbox(
		ctx,
		&api.UpdatePodSandboxRequest{Pod: pod, OverheadLinuxResources: overhead, LinuxResources: res},
	)
	return err
}

// PostUpdatePodSandbox tells plugins a pod's resources changed.
func (m *Manager) PostUpdatePodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	if m == nil {
		return nil
	}
	return m.a.PostUpdatePodSandbox(ctx, &api.PostUpdatePodSandboxRequest{Pod: pod})
}
