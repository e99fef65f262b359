package images

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
)

// removeFixture pulls one image under two tags and one image under one tag.
type removeFixture struct {
	e                   *testEnv
	shared, single      string // image IDs
	sharedA, sharedB    string // the two tags of shared
	singleTag, singleDg string // tag and digest reference of single
}

func newRemoveFixture(t *testing.T) removeFixture {
	t.Helper()
	reg := startRegistry(t, registryOptions{})
	sharedImg := testImage{layers: []string{"remove-shared"}}.build(t)
	sharedImg.push(t, reg.addr+"/arbor/a:v1", nil)
	sharedImg.push(t, reg.addr+"/arbor/b:v1", nil)
	singleImg := testImage{layers: []string{"remove-single", "second layer"}}.build(t)
	dg := singleImg.push(t, reg.addr+"/arbor/single:v1", nil)
	f := removeFixture{e: newEnv(t, envOptions{registries: []string{reg.addr}}),
		sharedA: reg.addr + "/arbor/a:v1", sharedB: reg.addr + "/arbor/b:v1",
		singleTag: reg.addr + "/arbor/single:v1", singleDg: reg.addr + "/arbor/single@" + dg}
	var err error
	ctx := context.Background()
	f.shared, err = f.e.svc.Pull(ctx, f.sharedA, nil)
	must(t, err)
	_, err = f.e.svc.Pull(ctx, f.sharedB, nil)
	must(t, err)
	f.single, err = f.e.svc.Pull(ctx, f.singleTag, nil)
	must(t, err)
	return f
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	t.Run("shared tag only untags", func(t *testing.T) {
		f := newRemoveFixture(t)
		must(t, f.e.svc.Remove(ctx, f.sharedA))
		st, err := f.e.svc.Status(ctx, f.shared)
		if err != nil || !slices.Equal(st.RepoTags, []string{f.sharedB}) {
			t.Fatalf("after untag: status %+v, %v; want only tag %s", st, err, f.sharedB)
		}
		if _, err := f.e.svc.Status(ctx, f.sharedA); !errors.Is(err, ErrNotFound) {
			t.Errorf("removed tag still resolves: %v", err)
		}
		must(t, f.e.svc.Remove(ctx, f.sharedB))
		if _, err := f.e.svc.Status(ctx, f.shared); !errors.Is(err, ErrNotFound) {
			t.Errorf("removing the last tag left the image: %v", err)
		}
	})
	for _, by := range []string{"tag", "id", "id prefix", "digest"} {
		t.Run("by "+by, func(t *testing.T) {
			f := newRemoveFixture(t)
			layersBefore := f.e.layerCount(t)
			ref := map[string]string{"tag": f.singleTag, "id": f.single, "id prefix": f.single[:10], "digest": f.singleDg}[by]
			must(t, f.e.svc.Remove(ctx, ref))
			if _, err := f.e.svc.Status(ctx, f.single); !errors.Is(err, ErrNotFound) {
				t.Fatalf("image still there after remove by %s: %v", by, err)
			}
			if got := f.e.layerCount(t); got != layersBefore-2 {
				t.Errorf("layers after remove = %d, want %d", got, layersBefore-2)
			}
			if _, err := f.e.svc.Status(ctx, f.shared); err != nil {
				t.Errorf("other image disappeared: %v", err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		f := newRemoveFixture(t)
		if err := f.e.svc.Remove(ctx, "127.0.0.1:1/arbor/none:v1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("remove missing: got %v, want ErrNotFound", err)
		}
	})
	t.Run("in use by container", func(t *testing.T) {
		f := newRemoveFixture(t)
		ctr, err := f.e.svc.Store().CreateContainer("", []string{"user-ctr"}, f.single, "", "", nil)
		must(t, err)
		err = f.e.svc.Remove(ctx, f.singleTag)
		if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), ctr.ID) {
			t.Fatalf("remove image in use: got %v, want ErrInUse naming %s", err, ctr.ID)
		}
		must(t, f.e.svc.Store().DeleteContainer(ctr.ID))
		must(t, f.e.svc.Remove(ctx, f.singleTag))
	})
}

func TestConcurrentRemove(t *testing.T) {
	f := newRemoveFixture(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = f.e.svc.Remove(context.Background(), f.single) })
	}
	wg.Wait()
	succeeded := 0
	for i, err := range errs {
		switch {
		case err == nil:
			succeeded++
		case !errors.Is(err, ErrNotFound):
			t.Errorf("remove %d: %v", i, err)
		}
	}
	if succeeded == 0 {
		t.Errorf("no concurrent remove succeeded: %v", errs)
	}
	if _, err := f.e.svc.Status(context.Background(), f.single); !errors.Is(err, ErrNotFound) {
		t.Errorf("image still there: %v", err)
	}
}
