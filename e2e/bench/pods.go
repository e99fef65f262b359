package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// LabelRunID is the label every pod and container of a run carries, with
// the run's ID as value; the final sweep removes whatever has it.
const LabelRunID = "cribench.arbor-cri.io/run-id"

// podNamespace is the Kubernetes namespace the pods claim to be in.
const podNamespace = "cribench"

// Spec is what the CRI workloads share: how pods and containers look.
type Spec struct {
	RunID          string
	Image          string // container image, pulled before a workload
	LogDir         string // host folder holding the pods' log folders
	CgroupParent   string // cgroupfs prefix: each pod gets <prefix>/pod<uid>; "" leaves it to the runtime
	RuntimeHandler string
	StopTimeout    int64 // seconds StopContainer waits before SIGKILL
}

// pod is one running pod of a workload and its containers.
type pod struct {
	id   string
	ctrs []string
}

// podConfig describes pod number i of a workload the way a kubelet does for
// a pod without shareProcessNamespace: PID namespace per container, so the
// runtime needs no infra process.
func (sp *Spec) podConfig(workload string, i int) *runtimeapi.PodSandboxConfig {
	name := fmt.Sprintf("%s-%s-%d", workload, sp.RunID, i)
	uid := fmt.Sprintf("%s-%s-%06d", sp.RunID, workload, i)
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: podNamespace, Uid: uid},
		Hostname:     name,
		LogDirectory: filepath.Join(sp.LogDir, podNamespace+"_"+name+"_"+uid),
		Labels:       map[string]string{LabelRunID: sp.RunID, "io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": podNamespace},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: podNamespaces(),
		}},
	}
	if sp.CgroupParent != "" {
		cfg.Linux.CgroupParent = sp.CgroupParent + "/pod" + uid
	}
	return cfg
}

// containerConfig is container j of a pod: `sleep 3600` in the image.
func (sp *Spec) containerConfig(j int) *runtimeapi.ContainerConfig {
	name := fmt.Sprintf("sleep%d", j)
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: sp.Image},
		Command:  []string{"sleep", "3600"},
		LogPath:  filepath.Join(name, "0.log"),
		Labels:   map[string]string{LabelRunID: sp.RunID},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: podNamespaces(),
		}},
	}
}

func podNamespaces() *runtimeapi.NamespaceOption {
	return &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD,
	}
}

// startPod runs pod i with ctrs started containers, recording each call in
// s (nil records nothing), and returns the pod and the summed call time.
// On error the pod returned holds what was made, for the sweep.
func (c *Client) startPod(ctx context.Context, sp *Spec, s *Samples, workload string, i, ctrs int) (*pod, time.Duration, error) {
	cfg := sp.podConfig(workload, i)
	p := &pod{}
	up, err := c.timed(ctx, s, "RunPodSandbox", func(ctx context.Context) error {
		r, err := c.RT.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: sp.RuntimeHandler})
		p.id = r.GetPodSandboxId()
		return err
	})
	if err != nil {
		return p, 0, err
	}
	for j := range ctrs {
		took, err := c.startContainer(ctx, sp, s, p, cfg, j)
		if err != nil {
			return p, 0, err
		}
		up += took
	}
	return p, up, nil
}

// startContainer creates and starts container j in p.
func (c *Client) startContainer(ctx context.Context, sp *Spec, s *Samples, p *pod, cfg *runtimeapi.PodSandboxConfig, j int) (time.Duration, error) {
	var id string
	created, err := c.timed(ctx, s, "CreateContainer", func(ctx context.Context) error {
		r, err := c.RT.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: p.id, Config: sp.containerConfig(j), SandboxConfig: cfg,
		})
		id = r.GetContainerId()
		return err
	})
	if err != nil {
		return 0, err
	}
	p.ctrs = append(p.ctrs, id)
	started, err := c.timed(ctx, s, "StartContainer", func(ctx context.Context) error {
		_, err := c.RT.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
		return err
	})
	return created + started, err
}

// stopPod stops and removes p's containers, then stops and removes p,
// recording each call in s (nil records nothing); it returns the summed
// call time.
func (c *Client) stopPod(ctx context.Context, sp *Spec, s *Samples, p *pod) (time.Duration, error) {
	var down time.Duration
	for _, id := range p.ctrs {
		took, err := c.removeContainer(ctx, sp, s, id)
		if err != nil {
			return 0, err
		}
		down += took
	}
	for _, step := range []struct {
		call string
		rpc  func(context.Context) error
	}{
		{"StopPodSandbox", func(ctx context.Context) error {
			_, err := c.RT.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id})
			return err
		}},
		{"RemovePodSandbox", func(ctx context.Context) error {
			_, err := c.RT.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id})
			return err
		}},
	} {
		took, err := c.timed(ctx, s, step.call, step.rpc)
		if err != nil {
			return 0, err
		}
		down += took
	}
	return down, nil
}

// removeContainer stops and removes one container.
func (c *Client) removeContainer(ctx context.Context, sp *Spec, s *Samples, id string) (time.Duration, error) {
	stopped, err := c.timed(ctx, s, "StopContainer", func(ctx context.Context) error {
		_, err := c.RT.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: sp.StopTimeout})
		return err
	})
	if err != nil {
		return 0, err
	}
	removed, err := c.timed(ctx, s, "RemoveContainer", func(ctx context.Context) error {
		_, err := c.RT.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
		return err
	})
	return stopped + removed, err
}

// Pods brings up n pods of one container each, then tears them all down,
// timing every call; "up" is Run+Create+Start and "down" is
// Stop+Remove+StopPodSandbox+RemovePodSandbox of one pod. What an error
// leaves behind is for the sweep.
func (c *Client) Pods(ctx context.Context, sp *Spec, n int) (*Samples, error) {
	if err := c.ensureImage(ctx, sp.Image); err != nil {
		return nil, err
	}
	s := &Samples{}
	pods := make([]*pod, 0, n)
	for i := range n {
		p, up, err := c.startPod(ctx, sp, s, "pods", i, 1)
		if err != nil {
			return s, fmt.Errorf("bringing up pod %d: %w", i, err)
		}
		pods = append(pods, p)
		s.Add("up", up)
	}
	for i, p := range pods {
		down, err := c.stopPod(ctx, sp, s, p)
		if err != nil {
			return s, fmt.Errorf("tearing down pod %d: %w", i, err)
		}
		s.Add("down", down)
	}
	return s, nil
}
