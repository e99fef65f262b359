package sandbox

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/oci/spec"
)

// Host files copied when the pod has no configuration of its own.
const (
	hostResolvConf = "/etc/resolv.conf"
	hostHosts      = "/etc/hosts"
)

// hostsHeader is the loopback part of a pod's /etc/hosts, as the kubelet
// writes it.
const hostsHeader = `# Hosts file written by Arbor.
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
fe00::0	ip6-mcastprefix
fe00::1	ip6-allnodes
fe00::2	ip6-allrouters
`

// noIPHostsAddr names the pod hostname when the pod has no IP yet, as
// Debian does for the machine's own name.
const noIPHostsAddr = "127.0.1.1"

// FilePaths returns the pod file paths inside podDir (e.g.
// RunRoot/pods/<id>) in the form oci/spec takes them. ShmPath is empty with
// host IPC: containers then bind the host's /dev/shm and MountShm is not
// called.
func FilePaths(podDir string, hostIPC bool) spec.PodFiles {
	f := spec.PodFiles{
		HostsPath:      filepath.Join(podDir, "hosts"),
		ResolvConfPath: filepath.Join(podDir, "resolv.conf"),
		HostnamePath:   filepath.Join(podDir, "hostname"),
	}
	if !hostIPC {
		f.ShmPath = filepath.Join(podDir, "shm")
	}
	return f
}

// WriteResolvConf writes the pod's resolv.conf at path: "search",
// "nameserver" and "options" lines from dns. When dns is nil or empty it
// copies the host's /etc/resolv.conf instead. Entries with whitespace and
// nameservers that are not IP addresses are refused.
func WriteResolvConf(path string, dns *runtimeapi.DNSConfig) error {
	if len(dns.GetServers())+len(dns.GetSearches())+len(dns.GetOptions()) == 0 {
		return copyHostFile(hostResolvConf, path)
	}
	content, err := resolvConf(dns)
	if err != nil {
		return fmt.Errorf("writing resolv.conf: %w", err)
	}
	return writeFileAtomic(path, []byte(content))
}

// resolvConf renders dns as resolv.conf text.
func resolvConf(dns *runtimeapi.DNSConfig) (string, error) {
	for _, s := range dns.GetServers() {
		if _, err := netip.ParseAddr(s); err != nil {
			return "", fmt.Errorf("nameserver %q: not an IP address", s)
		}
	}
	for _, list := range [][]string{dns.GetSearches(), dns.GetOptions()} {
		if err := checkWords(list); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	if len(dns.GetSearches()) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.GetSearches(), " "))
	}
	for _, s := range dns.GetServers() {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.GetOptions()) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.GetOptions(), " "))
	}
	return b.String(), nil
}

// checkWords refuses empty entries and entries with whitespace, which
// would inject extra lines or words into a generated file.
func checkWords(words []string) error {
	for _, w := range words {
		if w == "" || strings.ContainsAny(w, " \t\r\n\x00") {
			return fmt.Errorf("entry %q: empty or contains whitespace", w)
		}
	}
	return nil
}

// WriteHosts writes the pod's /etc/hosts at path: the loopback lines and
// one "<ip> <hostname>" line per pod IP (127.0.1.1 when there is none).
// With hostNetwork it copies the host's /etc/hosts instead.
func WriteHosts(path, hostname string, ips []string, hostNetwork bool) error {
	if hostNetwork {
		return copyHostFile(hostHosts, path)
	}
	content, err := hostsFile(hostname, ips)
	if err != nil {
		return fmt.Errorf("writing hosts: %w", err)
	}
	return writeFileAtomic(path, []byte(content))
}

// hostsFile renders the pod hosts file.
func hostsFile(hostname string, ips []string) (string, error) {
	if err := checkWords([]string{hostname}); err != nil {
		return "", fmt.Errorf("hostname: %w", err)
	}
	if len(ips) == 0 {
		ips = []string{noIPHostsAddr}
	}
	var b strings.Builder
	b.WriteString(hostsHeader)
	for _, ip := range ips {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return "", fmt.Errorf("pod ip %q: not an IP address", ip)
		}
		fmt.Fprintf(&b, "%s\t%s\n", addr, hostname)
	}
	return b.String(), nil
}

// WriteHostname writes hostname and a newline at path; an empty hostname
// means the node's.
func WriteHostname(path, hostname string) error {
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("writing hostname: reading node hostname: %w", err)
		}
		hostname = h
	}
	if err := checkWords([]string{hostname}); err != nil {
		return fmt.Errorf("writing hostname: %w", err)
	}
	return writeFileAtomic(path, []byte(hostname+"\n"))
}

// copyHostFile copies a host configuration file to path.
func copyHostFile(src, path string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return writeFileAtomic(path, data)
}

// writeFileAtomic replaces path with data (mode 0644) through a temporary
// file and a rename, so readers never see a partial file. Write pod files
// before containers bind mount them: a rename does not reach existing
// bind mounts.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
