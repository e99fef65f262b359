package cri

import (
	"context"
	"io"
	"log/slog"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/network"
)

func TestStatusFeatures(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nm, err := network.New(network.Config{ConfDir: t.TempDir(), NetNSDir: t.TempDir(), CacheDir: t.TempDir()}, log)
	mustOK(t, err)
	s := NewRuntimeServer(RuntimeInfo{Handlers: []string{"runc"}}, Deps{Network: nm}, log)
	resp, err := s.Status(context.Background(), &runtimeapi.StatusRequest{})
	mustOK(t, err)
	if !resp.GetFeatures().GetSupplementalGroupsPolicy() {
		t.Error("features.supplemental_groups_policy not reported")
	}
	var names []string
	for _, h := range resp.GetRuntimeHandlers() {
		names = append(names, h.GetName())
	}
	if len(names) != 2 || names[0] != "runc" || names[1] != "" {
		t.Errorf("runtime handlers %q, want the default under its name and under \"\"", names)
	}
}
