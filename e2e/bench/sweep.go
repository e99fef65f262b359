package bench

import (
	"context"
	"errors"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Sweep removes every container and pod labelled with runID ("" matches
// any value of LabelRunID, for leftovers of killed runs) and returns how
// many pods it removed. It carries on past errors and returns them all.
func (c *Client) Sweep(ctx context.Context, runID string) (int, error) {
	pods, err := c.labelledPods(ctx, runID)
	if err != nil {
		return 0, err
	}
	ctrs, err := c.labelledContainers(ctx, runID)
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, id := range ctrs {
		errs = append(errs, c.sweepContainer(ctx, id))
	}
	for _, id := range pods {
		errs = append(errs, c.sweepPod(ctx, id))
	}
	return len(pods), errors.Join(errs...)
}

// Leftovers counts the pods and containers still labelled with runID.
func (c *Client) Leftovers(ctx context.Context, runID string) (pods, ctrs int, err error) {
	p, err := c.labelledPods(ctx, runID)
	if err != nil {
		return 0, 0, err
	}
	cs, err := c.labelledContainers(ctx, runID)
	return len(p), len(cs), err
}

func (c *Client) labelledPods(ctx context.Context, runID string) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, c.rpcTimeout)
	defer cancel()
	r, err := c.RT.ListPodSandbox(cctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing pods to sweep: %w", err)
	}
	var ids []string
	for _, p := range r.GetItems() {
		if v, ok := p.GetLabels()[LabelRunID]; ok && (runID == "" || v == runID) {
			ids = append(ids, p.GetId())
		}
	}
	return ids, nil
}

func (c *Client) labelledContainers(ctx context.Context, runID string) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, c.rpcTimeout)
	defer cancel()
	r, err := c.RT.ListContainers(cctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing containers to sweep: %w", err)
	}
	var ids []string
	for _, ct := range r.GetContainers() {
		if v, ok := ct.GetLabels()[LabelRunID]; ok && (runID == "" || v == runID) {
			ids = append(ids, ct.GetId())
		}
	}
	return ids, nil
}

func (c *Client) sweepContainer(ctx context.Context, id string) error {
	cctx, cancel := context.WithTimeout(ctx, c.rpcTimeout)
	defer cancel()
	if _, err := c.RT.StopContainer(cctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("sweeping container %s: stopping: %w", id, err)
	}
	if _, err := c.RT.RemoveContainer(cctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("sweeping container %s: removing: %w", id, err)
	}
	return nil
}

func (c *Client) sweepPod(ctx context.Context, id string) error {
	cctx, cancel := context.WithTimeout(ctx, c.rpcTimeout)
	defer cancel()
	if _, err := c.RT.StopPodSandbox(cctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("sweeping pod %s: stopping: %w", id, err)
	}
	if _, err := c.RT.RemovePodSandbox(cctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("sweeping pod %s: removing: %w", id, err)
	}
	return nil
}
