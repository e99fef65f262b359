package cri

import (
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/oci/spec"
	"github.com/arbor-cri/arbor/store"
)

// A pod's folder holds the files its containers share.
const (
	resolvConfFile = "resolv.conf"
	hostsFile      = "hosts"
	hostnameFile   = "hostname"
	shmDir         = "shm"
)

func podFiles(p *store.Pod) spec.PodFiles {
	f := spec.PodFiles{
		ResolvConfPath: filepath.Join(p.Dir, resolvConfFile),
		HostsPath:      filepath.Join(p.Dir, hostsFile),
		HostnamePath:   filepath.Join(p.Dir, hostnameFile),
	}
	if !hostIPC(p) {
		f.ShmPath = filepath.Join(p.Dir, shmDir)
	}
	return f
}

func hostIPC(p *store.Pod) bool {
	return p.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetIpc() == runtimeapi.NamespaceMode_NODE
}

func hostNetwork(p *store.Pod) bool {
	return p.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
}
