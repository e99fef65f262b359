package images

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestPullByTagAndDigest(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	img := testImage{layers: []string{"tag-and-digest"}, user: "1000:1000"}.build(t)
	manifestDigest := img.push(t, reg.addr+"/arbor/app:v1", nil)
	e := newEnv(t, envOptions{registries: []string{reg.addr}})
	ctx := context.Background()

	id, err := e.svc.Pull(ctx, reg.addr+"/arbor/app:v1", nil)
	if err != nil {
		t.Fatalf("pull by tag: %v", err)
	}
	if id != img.configID {
		t.Fatalf("pull by tag returned %q, want image ID %q", id, img.configID)
	}
	byDigest, err := e.svc.Pull(ctx, reg.addr+"/arbor/app@"+manifestDigest, nil)
	if err != nil {
		t.Fatalf("pull by digest: %v", err)
	}
	if byDigest != id {
		t.Fatalf("pull by digest returned %q, want %q", byDigest, id)
	}

	st, err := e.svc.Status(ctx, reg.addr+"/arbor/app:v1")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	wantDigest := reg.addr + "/arbor/app@" + manifestDigest
	if st.ID != id || !slices.Contains(st.RepoTags, reg.addr+"/arbor/app:v1") || !slices.Contains(st.RepoDigests, wantDigest) {
		t.Errorf("status = id %s tags %v digests %v; want id %s, tag v1, digest %s", st.ID, st.RepoTags, st.RepoDigests, id, wantDigest)
	}
	if st.Size == 0 || st.UID == nil || *st.UID != 1000 || st.Username != "" || st.Pinned {
		t.Errorf("status size %d uid %v username %q pinned %v; want size>0 uid 1000", st.Size, st.UID, st.Username, st.Pinned)
	}
	if st.Config == nil || !slices.Equal(st.Config.Config.Cmd, []string{"/bin/true"}) {
		t.Errorf("status config = %+v, want Cmd [/bin/true]", st.Config)
	}
	if e.logs.count("Pulled image", "layers_fetched=1", "layers_reused=0") != 1 {
		t.Errorf("want one pull summary with layers_fetched=1 layers_reused=0 in logs:\n%s", e.logs)
	}
}

func TestStatusByIDPrefixAndDigest(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	img := testImage{layers: []string{"status"}, user: "nobody"}.build(t)
	manifestDigest := img.push(t, reg.addr+"/arbor/status:v1", nil)
	e := newEnv(t, envOptions{registries: []string{reg.addr}})
	ctx := context.Background()
	id, err := e.svc.Pull(ctx, reg.addr+"/arbor/status:v1", nil)
	must(t, err)

	for _, ref := range []string{id, "sha256:" + id, id[:12], reg.addr + "/arbor/status@" + manifestDigest} {
		t.Run(ref, func(t *testing.T) {
			st, err := e.svc.Status(ctx, ref)
			if err != nil {
				t.Fatalf("status %s: %v", ref, err)
			}
			if st.ID != id || st.UID != nil || st.Username != "nobody" {
				t.Errorf("status %s = id %s uid %v user %q; want %s, user nobody", ref, st.ID, st.UID, st.Username, id)
			}
		})
	}
	if _, err := e.svc.Status(ctx, reg.addr+"/arbor/missing:v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("status of missing image: got %v, want ErrNotFound", err)
	}
}

func TestSameImageTwoNamesOneID(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	img := testImage{layers: []string{"shared"}}.build(t)
	img.push(t, reg.addr+"/arbor/one:v1", nil)
	img.push(t, reg.addr+"/arbor/two:v2", nil)
	e := newEnv(t, envOptions{registries: []string{reg.addr}})
	downloads := &downloadLog{}
	e.svc.SetDownloadObserver(downloads)
	ctx := context.Background()

	first, err := e.svc.Pull(ctx, reg.addr+"/arbor/one:v1", nil)
	must(t, err)
	second, err := e.svc.Pull(ctx, reg.addr+"/arbor/two:v2", nil)
	must(t, err)
	if first != second {
		t.Fatalf("same image under two names got IDs %s and %s", first, second)
	}
	list, err := e.svc.List(ctx, "")
	must(t, err)
	if len(list) != 1 || len(list[0].RepoTags) != 2 {
		t.Fatalf("list = %+v, want one image with two tags", list)
	}
	if e.logs.count("Pulled image", "layers_fetched=0", "layers_reused=1") != 1 {
		t.Errorf("second pull should reuse its layer; logs:\n%s", e.logs)
	}
	if got := downloads.all(); len(got) != 2 || got[0].fetched != 1 || got[0].reused != 0 || got[0].bytes == 0 ||
		got[1].fetched != 0 || got[1].reused != 1 {
		t.Errorf("downloads observed: %+v, want the layer fetched by the first and reused by the second", got)
	}
	filtered, err := e.svc.List(ctx, reg.addr+"/arbor/two:v2")
	must(t, err)
	if len(filtered) != 1 || filtered[0].ID != first {
		t.Errorf("filtered list = %+v, want the one image", filtered)
	}
	none, err := e.svc.List(ctx, reg.addr+"/arbor/three:v3")
	if err != nil || len(none) != 0 {
		t.Errorf("list filtered by missing image = %v, %v; want empty", none, err)
	}
}

func TestPullErrors(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	testImage{layers: []string{"errors"}}.build(t).push(t, reg.addr+"/arbor/exists:v1", nil)
	closed := freeAddr(t)
	e := newEnv(t, envOptions{registries: []string{reg.addr, closed}})
	tests := []struct {
		name, ref string
		want      error
		mention   string
	}{
		{"empty", "", ErrInvalidReference, "empty"},
		{"uppercase", reg.addr + "/Arbor/App:v1", ErrInvalidReference, "Arbor/App"},
		{"double colon", "foo::bar", ErrInvalidReference, "foo::bar"},
		{"unknown transport", "dir:/tmp/nothing", ErrInvalidReference, "dir:/tmp/nothing"},
		{"bad docker prefix", "docker://", ErrInvalidReference, "docker://"},
		{"missing oci archive", "oci-archive:", ErrInvalidReference, "oci-archive:"},
		{"missing tag", reg.addr + "/arbor/exists:nope", ErrNotFound, reg.addr},
		{"missing repo", reg.addr + "/arbor/nothing:v1", ErrNotFound, reg.addr},
		{"unreachable", closed + "/arbor/app:v1", ErrUnavailable, closed},
		{"unresolvable", "nosuch.invalid/arbor/app:v1", ErrUnavailable, "nosuch.invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Pull(context.Background(), tc.ref, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("pull %q: got %v, want %v", tc.ref, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if n := e.layerCount(t); n != 0 {
				t.Errorf("%d layers left after failed pull", n)
			}
		})
	}
}

func TestLocationRewriteNeedsNoDNS(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	img := testImage{layers: []string{"rewrite"}}.build(t)
	img.push(t, reg.addr+"/arbor/fake:v1", nil)
	e := newEnv(t, envOptions{registries: []string{reg.addr}})
	ctx := context.Background()

	before := dnsDials.Load()
	id, err := e.svc.Pull(ctx, fakeHost+"/arbor/fake:v1", nil)
	if err != nil {
		t.Fatalf("pull through location rewrite: %v", err)
	}
	if n := dnsDials.Load() - before; n != 0 {
		t.Fatalf("pull of %s made %d DNS queries, want none", fakeHost, n)
	}
	st, err := e.svc.Status(ctx, fakeHost+"/arbor/fake:v1")
	if err != nil || st.ID != id || !slices.Contains(st.RepoTags, fakeHost+"/arbor/fake:v1") {
		t.Fatalf("status by fake name = %+v, %v; want id %s tagged with the fake name", st, err, id)
	}
	// The guard must be able to fail: a name with no rewrite is looked up.
	before = dnsDials.Load()
	_, err = e.svc.Pull(ctx, "unmapped.example.test/arbor/fake:v1", nil)
	if !errors.Is(err, ErrUnavailable) || dnsDials.Load() == before {
		t.Fatalf("pull of unmapped host: err %v, dns queries %d; want ErrUnavailable after a lookup", err, dnsDials.Load()-before)
	}
}

func TestShortNames(t *testing.T) {
	reg := startRegistry(t, registryOptions{})
	img := testImage{layers: []string{"short"}}.build(t)
	img.push(t, reg.addr+"/arbor/short:latest", nil)
	ctx := context.Background()

	t.Run("single search registry", func(t *testing.T) {
		e := newEnv(t, envOptions{registries: []string{reg.addr}, search: []string{reg.addr}})
		id, err := e.svc.Pull(ctx, "arbor/short", nil)
		if err != nil || id != img.configID {
			t.Fatalf("pull short name = %s, %v; want %s", id, err, img.configID)
		}
		st, err := e.svc.Status(ctx, "arbor/short")
		if err != nil || st.ID != id {
			t.Fatalf("status by short name = %+v, %v", st, err)
		}
	})
	t.Run("ambiguous in enforcing mode", func(t *testing.T) {
		e := newEnv(t, envOptions{registries: []string{reg.addr}, search: []string{reg.addr, fakeHost}})
		_, err := e.svc.Pull(ctx, "arbor/short", nil)
		if !errors.Is(err, ErrInvalidReference) || !strings.Contains(err.Error(), "ambiguous") {
			t.Fatalf("pull ambiguous short name: got %v, want ErrInvalidReference (ambiguous)", err)
		}
	})
	t.Run("permissive mode tries each registry", func(t *testing.T) {
		e := newEnv(t, envOptions{registries: []string{reg.addr}, search: []string{fakeHost, reg.addr},
			mutate: func(c *Config) { c.ShortNameMode = "permissive" }})
		id, err := e.svc.Pull(ctx, "arbor/short", nil)
		if err != nil || id != img.configID {
			t.Fatalf("pull short name in permissive mode = %s, %v", id, err)
		}
	})
}
