package network

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// Pod identifies a pod sandbox for network operations.
type Pod struct {
	// ID is the sandbox (infra container) ID, the CNI container ID.
	ID        string
	Name      string
	Namespace string
	UID       string
	// NetNSPath is the sandbox's network namespace (from NewNetNS). Teardown
	// tolerates a path that no longer exists.
	NetNSPath    string
	PortMappings []PortMapping
	// CgroupParent is passed as the "cgroupPath" capability.
	CgroupParent string
	// Bandwidth, when set, is passed as the "bandwidth" capability.
	Bandwidth *Bandwidth
}

// PortMapping maps a host port to a container port ("portMappings" capability).
type PortMapping struct {
	// Protocol is "tcp" (default), "udp" or "sctp", any case.
	Protocol      string
	ContainerPort int32
	HostPort      int32
	// HostIP restricts the mapping to one host address; empty means all.
	HostIP string
}

// Bandwidth limits pod traffic in bits per second (bursts in bits).
type Bandwidth struct {
	IngressRate  uint64
	IngressBurst uint64
	EgressRate   uint64
	EgressBurst  uint64
}

// Result is what the default network assigned to the pod.
type Result struct {
	// IPs are the pod's addresses, first the primary.
	IPs        []net.IP
	Interfaces []Interface
}

// Interface is an interface created by a plugin.
type Interface struct {
	Name string
	Mac  string
	// Sandbox is the netns path for pod-side interfaces, "" for host-side ones.
	Sandbox string
}

const (
	podIfName = "eth0"
	loIfName  = "lo"
)

func (p Pod) validate() error {
	if p.ID == "" {
		return errors.New("pod sandbox id is empty")
	}
	return nil
}

// runtimeConf builds libcni's runtime arguments for pod on ifName.
func (p Pod) runtimeConf(netns, ifName string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID:    p.ID,
		NetNS:          netns,
		IfName:         ifName,
		Args:           p.cniArgs(),
		CapabilityArgs: p.capabilityArgs(),
	}
}

// cniArgs are the CNI_ARGS Kubernetes runtimes pass.
func (p Pod) cniArgs() [][2]string {
	return [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", p.Namespace},
		{"K8S_POD_NAME", p.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", p.ID},
		{"K8S_POD_UID", p.UID},
	}
}

// capabilityArgs are the runtimeConfig values; libcni hands each only to
// plugins declaring that capability.
func (p Pod) capabilityArgs() map[string]any {
	caps := map[string]any{}
	if ports := p.portMappings(); len(ports) > 0 {
		caps["portMappings"] = ports
	}
	if p.CgroupParent != "" {
		caps["cgroupPath"] = p.CgroupParent
	}
	if b := p.Bandwidth; b != nil {
		caps["bandwidth"] = map[string]uint64{
			"ingressRate": b.IngressRate, "ingressBurst": b.IngressBurst,
			"egressRate": b.EgressRate, "egressBurst": b.EgressBurst,
		}
	}
	return caps
}

// portMappings converts mappings with a host port to the portmap plugin's
// form; mappings without a host port are not forwarded.
func (p Pod) portMappings() []map[string]any {
	var out []map[string]any
	for _, pm := range p.PortMappings {
		if pm.HostPort <= 0 {
			continue
		}
		proto := strings.ToLower(pm.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		m := map[string]any{"hostPort": pm.HostPort, "containerPort": pm.ContainerPort, "protocol": proto}
		if pm.HostIP != "" {
			m["hostIP"] = pm.HostIP
		}
		out = append(out, m)
	}
	return out
}

// convertResult extracts addresses and interfaces from a plugin result.
func convertResult(res types.Result) (Result, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return Result{}, fmt.Errorf("converting cni result: %w", err)
	}
	var out Result
	for _, ip := range r.IPs {
		out.IPs = append(out.IPs, ip.Address.IP)
	}
	for _, i := range r.Interfaces {
		out.Interfaces = append(out.Interfaces, Interface{Name: i.Name, Mac: i.Mac, Sandbox: i.Sandbox})
	}
	if len(out.IPs) == 0 {
		return Result{}, errors.New("cni result has no ip address")
	}
	return out, nil
}
