package spec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultCaps is the capability set of an unprivileged container.
var DefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_KILL",
}

// capAll is the CRI keyword for every capability.
const capAll = "ALL"

// Capabilities computes the process capabilities. Privileged containers and
// "ALL" get the host's bounding set; otherwise the defaults, then add, then
// drop ("ALL" in drop clears the set before explicit adds are applied).
// Adding a capability the host's bounding set lacks is an error, because
// runc could not grant it.
func Capabilities(c *runtimeapi.Capability, privileged bool, h Host) (*specs.LinuxCapabilities, error) {
	if privileged {
		return capSets(h.BoundingCaps, nil), nil
	}
	adds, addAll, err := normalizeCaps(c.GetAddCapabilities(), "add_capabilities")
	if err != nil {
		return nil, err
	}
	drops, dropAll, err := normalizeCaps(c.GetDropCapabilities(), "drop_capabilities")
	if err != nil {
		return nil, err
	}
	ambient, _, err := normalizeCaps(c.GetAddAmbientCapabilities(), "add_ambient_capabilities")
	if err != nil {
		return nil, err
	}
	set := defaultCapsOn(h)
	if addAll {
		set = slices.Clone(h.BoundingCaps)
	}
	if dropAll {
		set = nil
	}
	for _, name := range append(slices.Clone(adds), ambient...) {
		if !h.hasCap(name) {
			return nil, fmt.Errorf("capabilities: %s is not in the runtime's bounding set", name)
		}
		if !slices.Contains(set, name) {
			set = append(set, name)
		}
	}
	set = slices.DeleteFunc(set, func(n string) bool { return slices.Contains(drops, n) })
	ambient = slices.DeleteFunc(ambient, func(n string) bool { return !slices.Contains(set, n) })
	return capSets(set, ambient), nil
}

// defaultCapsOn keeps the default capabilities the host can grant.
func defaultCapsOn(h Host) []string {
	var out []string
	for _, name := range DefaultCaps {
		if h.hasCap(name) {
			out = append(out, name)
		}
	}
	return out
}

// capSets builds the OCI capability sets; ambient capabilities must also be
// inheritable.
func capSets(set, ambient []string) *specs.LinuxCapabilities {
	return &specs.LinuxCapabilities{
		Bounding:    slices.Clone(set),
		Effective:   slices.Clone(set),
		Permitted:   slices.Clone(set),
		Inheritable: slices.Clone(ambient),
		Ambient:     slices.Clone(ambient),
	}
}

// normalizeCaps turns CRI names ("net_admin", "CAP_NET_ADMIN") into
// "CAP_*" names, reporting "ALL" separately.
func normalizeCaps(names []string, field string) ([]string, bool, error) {
	var out []string
	all := false
	for _, n := range names {
		up := strings.ToUpper(n)
		if up == capAll {
			all = true
			continue
		}
		if !strings.HasPrefix(up, "CAP_") {
			up = "CAP_" + up
		}
		if !knownCap(up) {
			return nil, false, fmt.Errorf("capabilities.%s: unknown capability %q", field, n)
		}
		out = append(out, up)
	}
	return out, all, nil
}

// knownCap reports whether name is a capability the kernel ABI defines.
func knownCap(name string) bool {
	for _, c := range capability.ListKnown() {
		if capName(c) == name {
			return true
		}
	}
	return false
}
