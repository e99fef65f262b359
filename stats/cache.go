package stats

import (
	"context"
	"maps"
	"slices"
	"time"
)

// staleIntervals is how many refresh intervals a layer stays cached
// without being asked for.
const staleIntervals = 3

// Serve measures the cached writable layers again every FsInterval until
// ctx is cancelled.
func (c *Collector) Serve(ctx context.Context) error {
	tick := time.NewTicker(c.opts.FsInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			c.Refresh(ctx)
		}
	}
}

// Refresh measures every cached layer again and drops what was not asked
// for lately. Serve calls it; tests may call it directly.
func (c *Collector) Refresh(ctx context.Context) {
	for _, id := range c.cachedLayers() {
		if ctx.Err() != nil {
			return
		}
		u := c.measure(ctx, id)
		c.mu.Lock()
		if e, ok := c.layers[id]; ok && u != nil {
			e.usage = u
		}
		c.mu.Unlock()
	}
}

// cachedLayers drops stale layers and CPU samples (of objects nobody
// asked about lately, removed ones included) and returns the IDs of the
// layers left.
func (c *Collector) cachedLayers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	cutoff := c.opts.Now().Add(-staleIntervals * c.opts.FsInterval)
	maps.DeleteFunc(c.layers, func(_ string, e *layerEntry) bool { return e.asked.Before(cutoff) })
	maps.DeleteFunc(c.cpu, func(_ string, s cpuSample) bool { return s.at.Before(cutoff) })
	return slices.Sorted(maps.Keys(c.layers))
}

// layer returns the cached usage of a container's writable layer,
// measuring it now on the first call.
func (c *Collector) layer(ctx context.Context, id string) *DiskUsage {
	if c.opts.Layers == nil {
		return nil
	}
	c.mu.Lock()
	e, ok := c.layers[id]
	if ok {
		e.asked = c.opts.Now()
		u := e.usage
		c.mu.Unlock()
		return copyUsage(u)
	}
	c.mu.Unlock()
	u := c.measure(ctx, id)
	c.mu.Lock()
	c.layers[id] = &layerEntry{usage: u, asked: c.opts.Now()}
	c.mu.Unlock()
	return copyUsage(u)
}

// measure walks a container's writable layer; nil when it cannot.
func (c *Collector) measure(ctx context.Context, id string) *DiskUsage {
	dir, mp, err := c.opts.Layers.WritableLayer(id)
	if err == nil {
		var u DiskUsage
		if u, err = Usage(ctx, dir); err == nil {
			u.Mountpoint, u.Timestamp = mp, c.opts.Now()
			return &u
		}
	}
	c.log.Debug("Cannot measure writable layer", "container_id", id, "error", err)
	return nil
}

func copyUsage(u *DiskUsage) *DiskUsage {
	if u == nil {
		return nil
	}
	v := *u
	return &v
}

// rate records a CPU sample under key and returns the CPU rate in
// core-nanoseconds per second, or nil before there are two samples at
// least MinCPUWindow apart. Samples closer together return the last rate.
// A counter that went back (a recreated cgroup) starts over.
func (c *Collector) rate(key string, cg *Cgroup) *uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := cpuSample{usage: cg.CPU.UsageNs, at: cg.Timestamp}
	prev, ok := c.cpu[key]
	switch {
	case !ok || cur.usage < prev.usage:
		c.cpu[key] = cur
		return nil
	case cur.at.Sub(prev.at) < c.opts.MinCPUWindow:
		if !prev.hasRate {
			return nil
		}
		r := prev.rate
		return &r
	}
	cur.rate = uint64(float64(cur.usage-prev.usage) / cur.at.Sub(prev.at).Seconds())
	cur.hasRate = true
	c.cpu[key] = cur
	r := cur.rate
	return &r
}
