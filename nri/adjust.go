package nri

import (
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/runtime-tools/generate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Adjust applies the adjustments plugins asked for to a container's spec,
// in place. injectCDI resolves CDI device names into the spec.
func Adjust(sp *specs.Spec, adj *api.ContainerAdjustment, injectCDI func(*specs.Spec, []string) error) error {
	if adj == nil {
		return nil
	}
	gen := generate.SpecGenerator(&specEditor{sp: sp}, generate.WithCDIDeviceInjector(injectCDI))
	if err := gen.Adjust(adj); err != nil {
		return fmt.Errorf("applying NRI adjustments: %w", err)
	}
	return nil
}

// specEditor makes the small edits NRI's generator asks for directly on a
// spec (the generator's interface is runtime-tools', which it does not
// need whole).
type specEditor struct{ sp *specs.Spec }

func (e *specEditor) Spec() *specs.Spec { return e.sp }

func (e *specEditor) linux() *specs.Linux {
	if e.sp.Linux == nil {
		e.sp.Linux = &specs.Linux{}
	}
	return e.sp.Linux
}

func (e *specEditor) resources() *specs.LinuxResources {
	l := e.linux()
	if l.Resources == nil {
		l.Resources = &specs.LinuxResources{}
	}
	return l.Resources
}

func (e *specEditor) cpu() *specs.LinuxCPU {
	r := e.resources()
	if r.CPU == nil {
		r.CPU = &specs.LinuxCPU{}
	}
	return r.CPU
}

func (e *specEditor) memory() *specs.LinuxMemory {
	r := e.resources()
	if r.Memory == nil {
		r.Memory = &specs.LinuxMemory{}
	}
	return r.Memory
}

func (e *specEditor) process() *specs.Process {
	if e.sp.Process == nil {
		e.sp.Process = &specs.Process{}
	}
	return e.sp.Process
}

func (e *specEditor) hooks() *specs.Hooks {
	if e.sp.Hooks == nil {
		e.sp.Hooks = &specs.Hooks{}
	}
	return e.sp.Hooks
}

func (e *specEditor) AddAnnotation(key, value string) {
	if e.sp.Annotations == nil {
		e.sp.Annotations = map[string]string{}
	}
	e.sp.Annotations[key] = value
}

func (e *specEditor) RemoveAnnotation(key string) { delete(e.sp.Annotations, key) }

func (e *specEditor) AddDevice(d specs.LinuxDevice) {
	l := e.linux()
	l.Devices = slices.DeleteFunc(l.Devices, func(x specs.LinuxDevice) bool { return x.Path == d.Path })
	l.Devices = append(l.Devices, d)
}

func (e *specEditor) RemoveDevice(path string) {
	l := e.linux()
	l.Devices = slices.DeleteFunc(l.Devices, func(x specs.LinuxDevice) bool { return x.Path == path })
}

func (e *specEditor) AddOrReplaceLinuxNamespace(ns, path string) error {
	l := e.linux()
	t := specs.LinuxNamespaceType(ns)
	for i := range l.Namespaces {
		if l.Namespaces[i].Type == t {
			l.Namespaces[i].Path = path
			return nil
		}
	}
	l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
	return nil
}

func (e *specEditor) RemoveLinuxNamespace(ns string) error {
	l := e.linux()
	l.Namespaces = slices.DeleteFunc(
		l.Namespaces,
		func(x specs.LinuxNamespace) bool { return x.Type == specs.LinuxNamespaceType(ns) },
	)
	return nil
}

func (e *specEditor) AddPreStartHook(h specs.Hook) {
	e.hooks().Prestart = append(e.hooks().Prestart, h)
}
func (e *specEditor) AddPostStartHook(h specs.Hook) {
	e.hooks().Poststart = append(e.hooks().Poststart, h)
}
func (e *specEditor) AddPostStopHook(h specs.Hook) {
	e.hooks().Poststop = append(e.hooks().Poststop, h)
}

func (e *specEditor) AddProcessEnv(name, value string) {
	p := e.process()
	p.Env = slices.DeleteFunc(p.Env, func(kv string) bool { return strings.SplitN(kv, "=", 2)[0] == name })
	p.Env = append(p.Env, name+"="+value)
}

func (e *specEditor) ClearProcessEnv()              { e.process().Env = nil }
func (e *specEditor) SetProcessArgs(args []string)  { e.process().Args = args }
func (e *specEditor) SetProcessOOMScoreAdj(adj int) { e.process().OOMScoreAdj = &adj }

func (e *specEditor) AddLinuxResourcesDevice(allow bool, typ string, major, minor *int64, access string) {
	r := e.resources()
	r.Devices = append(
		r.Devices,
		specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Major: major, Minor: minor, Access: access},
	)
}

func (e *specEditor) AddLinuxResourcesHugepageLimit(pageSize string, limit uint64) {
	r := e.resources()
	r.HugepageLimits = slices.DeleteFunc(
		r.HugepageLimits,
		func(h specs.LinuxHugepageLimit) bool { return h.Pagesize == pageSize },
	)
	r.HugepageLimits = append(r.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: pageSize, Limit: limit})
}

func (e *specEditor) AddLinuxResourcesUnified(key, value string) {
	r := e.resources()
	if r.Unified == nil {
		r.Unified = map[string]string{}
	}
	r.Unified[key] = value
}

func (e *specEditor) AddMount(m specs.Mount) { e.sp.Mounts = append(e.sp.Mounts, m) }
func (e *specEditor) ClearMounts()           { e.sp.Mounts = nil }
func (e *specEditor) Mounts() []specs.Mount  { return e.sp.Mounts }

func (e *specEditor) RemoveMount(dest string) {
	e.sp.Mounts = slices.DeleteFunc(e.sp.Mounts, func(m specs.Mount) bool { return m.Destination == dest })
}

func (e *specEditor) AddLinuxSysctl(key, value string) {
	l := e.linux()
	if l.Sysctl == nil {
		l.Sysctl = map[string]string{}
	}
	l.Sysctl[key] = value
}

func (e *specEditor) RemoveLinuxSysctl(key string)      { delete(e.linux().Sysctl, key) }
func (e *specEditor) SetLinuxCgroupsPath(path string)   { e.linux().CgroupsPath = path }
func (e *specEditor) SetLinuxResourcesCPUCpus(s string) { e.cpu().Cpus = s }
func (e *specEditor) SetLinuxResourcesCPUMems(s string) { e.cpu().Mems = s }
func (e *specEditor) SetLinuxResourcesCPUPeriod(v uint64) {
	e.cpu().Period = &v
}
func (e *specEditor) SetLinuxResourcesCPUQuota(v int64)           { e.cpu().Quota = &v }
func (e *specEditor) SetLinuxResourcesCPURealtimePeriod(v uint64) { e.cpu().RealtimePeriod = &v }
func (e *specEditor) SetLinuxResourcesCPURealtimeRuntime(v int64) { e.cpu().RealtimeRuntime = &v }
func (e *specEditor) SetLinuxResourcesCPUShares(v uint64)         { e.cpu().Shares = &v }
func (e *specEditor) SetLinuxResourcesMemoryLimit(v int64)        { e.memory().Limit = &v }
func (e *specEditor) SetLinuxResourcesMemorySwap(v int64)         { e.memory().Swap = &v }
func (e *specEditor) SetLinuxRootPropagation(prop string) error {
	e.linux().RootfsPropagation = prop
	return nil
}
