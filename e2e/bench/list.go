package bench

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// upMany brings up ctrs containers in pods of perPod containers each
// (untimed) and returns the pods; on error what was made is for the sweep.
func (c *Client) upMany(ctx context.Context, sp *Spec, workload string, ctrs, perPod int) ([]*pod, error) {
	if err := c.ensureImage(ctx, sp.Image); err != nil {
		return nil, err
	}
	var pods []*pod
	for i := 0; ctrs > 0; i++ {
		n := min(perPod, ctrs)
		p, _, err := c.startPod(ctx, sp, nil, workload, i, n)
		if err != nil {
			return pods, fmt.Errorf("bringing up %s pod %d: %w", workload, i, err)
		}
		pods = append(pods, p)
		ctrs -= n
	}
	return pods, nil
}

// downMany tears pods down (untimed), stopping at the first error.
func (c *Client) downMany(ctx context.Context, sp *Spec, pods []*pod) error {
	for _, p := range pods {
		if _, err := c.stopPod(ctx, sp, nil, p); err != nil {
			return fmt.Errorf("tearing down pod %s: %w", p.id, err)
		}
	}
	return nil
}

// List brings up m containers in pods of perPod, checks the runtime lists
// them all, then times k unfiltered ListContainers and ListPodSandbox calls
// (what a kubelet's relist asks) and tears everything down.
func (c *Client) List(ctx context.Context, sp *Spec, m, perPod, k int) (*Samples, error) {
	pods, err := c.upMany(ctx, sp, "list", m, perPod)
	if err != nil {
		return nil, err
	}
	if err := c.checkListed(ctx, sp, m, len(pods)); err != nil {
		return nil, err
	}
	s := &Samples{}
	for range k {
		if _, err := c.timed(ctx, s, "ListContainers", func(ctx context.Context) error {
			_, err := c.RT.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
			return err
		}); err != nil {
			return s, err
		}
		if _, err := c.timed(ctx, s, "ListPodSandbox", func(ctx context.Context) error {
			_, err := c.RT.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			return err
		}); err != nil {
			return s, err
		}
	}
	return s, c.downMany(ctx, sp, pods)
}

// checkListed requires the run's running containers and ready pods to be
// listed in full.
func (c *Client) checkListed(ctx context.Context, sp *Spec, ctrs, pods int) error {
	cctx, cancel := context.WithTimeout(ctx, c.rpcTimeout)
	defer cancel()
	sel := map[string]string{LabelRunID: sp.RunID}
	cl, err := c.RT.ListContainers(cctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		LabelSelector: sel, State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	if err != nil {
		return fmt.Errorf("listing the run's containers: %w", err)
	}
	pl, err := c.RT.ListPodSandbox(cctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: sel, State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
	}})
	if err != nil {
		return fmt.Errorf("listing the run's pods: %w", err)
	}
	if len(cl.GetContainers()) != ctrs || len(pl.GetItems()) != pods {
		return fmt.Errorf("checking lists: runtime lists %d running containers in %d ready pods, want %d in %d",
			len(cl.GetContainers()), len(pl.GetItems()), ctrs, pods)
	}
	return nil
}
