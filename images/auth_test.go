package images

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/image/v5/types"
)

func TestPullWithRegistryAuth(t *testing.T) {
	reg := startRegistry(t, registryOptions{user: "arbor", password: "s3cret"})
	img := testImage{layers: []string{"private"}}.build(t)
	img.push(t, reg.addr+"/arbor/private:v1", &types.DockerAuthConfig{Username: "arbor", Password: "s3cret"})
	ref := reg.addr + "/arbor/private:v1"
	basic := base64.StdEncoding.EncodeToString([]byte("arbor:s3cret"))
	tests := []struct {
		name     string
		auth     *Auth
		authFile string
		want     error
	}{
		{"right credentials", &Auth{Username: "arbor", Password: "s3cret"}, "", nil},
		{"right auth field", &Auth{Auth: basic}, "", nil},
		{"auth file", nil, fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.addr, basic), nil},
		{"wrong password", &Auth{Username: "arbor", Password: "wrong"}, "", ErrUnauthorized},
		{"no credentials", nil, "", ErrUnauthorized},
		{"malformed auth field", &Auth{Auth: "%%%"}, "", ErrInvalidAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{registries: []string{reg.addr}})
			if tc.authFile != "" {
				writeFile(t, e.cfg.AuthFile, tc.authFile)
			}
			id, err := e.svc.Pull(context.Background(), ref, tc.auth)
			if tc.want == nil {
				if err != nil || id != img.configID {
					t.Fatalf("pull = %s, %v; want %s", id, err, img.configID)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("pull: got %v, want %v", err, tc.want)
			}
			if tc.want == ErrUnauthorized && !strings.Contains(err.Error(), reg.addr) {
				t.Errorf("error %q does not name the registry %s", err, reg.addr)
			}
			if n := e.layerCount(t); n != 0 {
				t.Errorf("failed pull left %d layers", n)
			}
		})
	}
}

func TestSignaturePolicy(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	testImage{layers: []string{"policy"}}.build(t).push(t, reg.addr+"/arbor/policy:v1", nil)
	ref := reg.addr + "/arbor/policy:v1"
	t.Run("missing policy accepts and logs", func(t *testing.T) {
		e := newEnv(t, envOptions{registries: []string{reg.addr}, mutate: func(c *Config) {
			c.SignaturePolicy = filepath.Join(t.TempDir(), "absent.json")
		}})
		if e.logs.count("Signature policy file missing") != 1 {
			t.Errorf("missing policy not logged:\n%s", e.logs)
		}
		if _, err := e.svc.Pull(context.Background(), ref, nil); err != nil {
			t.Fatalf("pull with missing policy: %v", err)
		}
	})
	t.Run("reject policy denies", func(t *testing.T) {
		e := newEnv(t, envOptions{registries: []string{reg.addr}})
		must(t, os.WriteFile(e.cfg.SignaturePolicy, []byte(`{"default":[{"type":"reject"}]}`), 0o600))
		_, err := e.svc.Pull(context.Background(), ref, nil)
		if !errors.Is(err, ErrDenied) {
			t.Fatalf("pull under reject policy: got %v, want ErrDenied", err)
		}
	})
}
