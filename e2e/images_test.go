package e2e

import (
	"context"
	"encoding/base64"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/e2e/fixture"
	"github.com/arbor-cri/arbor/e2e/harness"
)

// pullSpec is a CRI pull request for ref.
func pullSpec(ref string) *runtimeapi.PullImageRequest {
	return &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}
}

func TestImagePullByTagAndDigest(t *testing.T) {
	env := sharedEnv(t)
	d := harness.Start(t, harness.Options{Shared: env})
	uid, name := env.Catalog.MustImage(fixture.RefUserUID), env.Catalog.MustImage(fixture.RefUserName)
	byTag, byDigest := env.Image(fixture.RefUserUID), env.Catalog.DigestReference(fixture.RefUserName)
	if got := crictlPull(t, d, byTag); got != imageID(uid) {
		t.Errorf("crictl pull %s reported %q, want image ID %s", byTag, got, imageID(uid))
	}
	if got := crictlPull(t, d, byDigest); got != imageID(name) {
		t.Errorf("crictl pull %s reported %q, want image ID %s", byDigest, got, imageID(name))
	}
	imgs := listImages(t, d)
	cases := []struct {
		name     string
		img      fixture.Image
		ref      string
		tags     []string
		uid      int64 // -1 for none
		username string
	}{
		{name: "by tag", img: uid, ref: byTag, tags: []string{byTag}, uid: 1002},
		{name: "by digest", img: name, ref: byDigest, uid: -1, username: "www-data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			digestRef := env.Catalog.Registry + "/" + tc.img.Repository + "@" + tc.img.Digest
			listed := imageByID(imgs, imageID(tc.img))
			if listed == nil {
				t.Fatalf("crictl images does not list %s:\n%+v", imageID(tc.img), imgs)
			}
			if !slices.Equal(listed.RepoTags, tc.tags) || !slices.Contains(listed.RepoDigests, digestRef) {
				t.Errorf("listed tags %v digests %v; want tags %v and digest %s", listed.RepoTags, listed.RepoDigests, tc.tags, digestRef)
			}
			st, user := inspectImage(t, d, tc.ref)
			if st.ID != imageID(tc.img) || !slices.Equal(st.RepoTags, tc.tags) || !slices.Contains(st.RepoDigests, digestRef) {
				t.Errorf("inspecti: id %s tags %v digests %v", st.ID, st.RepoTags, st.RepoDigests)
			}
			if st.Size != listed.Size || uint64(st.Size) < compressedSize(tc.img) {
				t.Errorf("inspecti size %d, listed %d, compressed layers %d", st.Size, listed.Size, compressedSize(tc.img))
			}
			checkUser(t, st, tc.uid, tc.username)
			if user != tc.img.Config.User {
				t.Errorf("inspecti config user %q, image has %q", user, tc.img.Config.User)
			}
		})
	}
	checkImagesTable(t, d, env.Catalog.Registry+"/"+uid.Repository, uid, "latest")
	checkImagesTable(t, d, env.Catalog.Registry+"/"+name.Repository, name, "<none>")
	d.Stop(t)
}

func TestImageRemove(t *testing.T) {
	env := sharedEnv(t)
	d := harness.Start(t, harness.Options{Shared: env})
	t.Run("by tag", func(t *testing.T) {
		ref := env.Image(fixture.RefBusyboxDocker)
		removeAndCheck(t, d, ref, crictlPull(t, d, ref))
	})
	t.Run("by ID", func(t *testing.T) {
		id := crictlPull(t, d, env.Image(fixture.RefUserUID))
		removeAndCheck(t, d, id, id)
	})
	t.Run("by digest", func(t *testing.T) {
		ref := env.Catalog.DigestReference(fixture.RefUserName)
		id := crictlPull(t, d, env.Image(fixture.RefUserName)) // by tag: the digest comes with it
		removeAndCheck(t, d, ref, id)
	})
	t.Run("one of several tags", func(t *testing.T) { checkUntag(t, d, env) })
	d.Stop(t)
}

// removeAndCheck runs crictl rmi ref and requires image id to be gone.
func removeAndCheck(t *testing.T, d *harness.Daemon, ref, id string) {
	t.Helper()
	if imageByID(listImages(t, d), id) == nil {
		t.Fatalf("image %s is not there before removal", id)
	}
	if _, err := d.Crictl("rmi", ref); err != nil {
		t.Fatal(err)
	}
	if img := imageByID(listImages(t, d), id); img != nil {
		t.Fatalf("crictl rmi %s left the image: %+v", ref, img)
	}
	if out, err := d.Crictl("inspecti", ref); err == nil {
		t.Errorf("inspecti after removal succeeded:\n%s", out)
	}
}

// checkUntag pulls three tags of one image, removes them one by one and
// requires each removal but the last to only untag.
func checkUntag(t *testing.T, d *harness.Daemon, env *harness.Env) {
	const repo = "k8s-staging-cri-tools/test-image-tags"
	tags := []string{env.Image(repo + ":1"), env.Image(repo + ":2"), env.Image(repo + ":3")}
	id := ""
	for _, tag := range tags {
		got := crictlPull(t, d, tag)
		if id != "" && got != id {
			t.Fatalf("tag %s is image %s, the others %s", tag, got, id)
		}
		id = got
	}
	for i, tag := range tags {
		if _, err := d.Crictl("rmi", tag); err != nil {
			t.Fatal(err)
		}
		img := imageByID(listImages(t, d), id)
		if i == len(tags)-1 {
			if img != nil {
				t.Fatalf("removing the last tag left the image: %+v", img)
			}
			return
		}
		if img == nil {
			t.Fatalf("removing tag %s of an image with %d tags removed the image", tag, len(tags)-i)
		}
		if !sameSet(img.RepoTags, tags[i+1:]) {
			t.Errorf("after removing %s the tags are %v, want %v", tag, img.RepoTags, tags[i+1:])
		}
	}
}

func TestImageSameUnderTwoNames(t *testing.T) {
	env := sharedEnv(t)
	d := harness.Start(t, harness.Options{Shared: env})
	cri := d.Client(t)
	ctx := context.Background()
	manifestPath := "/v2/pause/manifests/3.10"
	before := countRequests(t, env.Registry, manifestPath)
	want := imageID(env.Catalog.MustImage(fixture.RefSandboxPause))
	names := []string{"registry.k8s.io/pause:3.10", env.Image(fixture.RefSandboxPause)}
	for _, name := range names {
		resp, err := cri.PullImage(ctx, pullSpec(name))
		if err != nil {
			t.Fatalf("pulling %s: %v", name, err)
		}
		if resp.ImageRef != want {
			t.Errorf("PullImage(%s) returned %q, want the image ID %s (not a repo digest)", name, resp.ImageRef, want)
		}
	}
	if after := countRequests(t, env.Registry, manifestPath); after < before+2 {
		t.Errorf("the local registry served %s %d times for two pulls: a pull went elsewhere", manifestPath, after-before)
	}
	var found []criImage
	for _, img := range listImages(t, d) {
		if slices.Contains(img.RepoTags, names[0]) || slices.Contains(img.RepoTags, names[1]) {
			found = append(found, img)
		}
	}
	if len(found) != 1 || found[0].ID != want || !slices.Contains(found[0].RepoTags, names[0]) || !slices.Contains(found[0].RepoTags, names[1]) {
		t.Errorf("want one image %s tagged %v, got %+v", want, names, found)
	}
	d.Stop(t)
}

func TestImageConcurrentPullsShareOneDownload(t *testing.T) {
	reg, cat := ownRegistry(t, "", "", fixture.RefMultilayer)
	proxy := startSlowProxy(t, reg.Addr(), 25<<20) // about two seconds for the image
	d := harness.Start(t, harness.Options{Args: writeRegistriesConf(t, proxy.Addr())})
	img := cat.MustImage(fixture.RefMultilayer)
	ref := proxy.Addr() + "/" + fixture.RefMultilayer
	const pulls = 8
	ids := make([]string, pulls)
	errs := make([]error, pulls)
	// No answer reaches the daemon until every pull has joined the first.
	release := proxy.Hold()
	defer release()
	var wg sync.WaitGroup
	for i := range pulls {
		wg.Go(func() {
			out, err := d.Crictl("pull", ref)
			ids[i], errs[i] = strings.TrimSpace(out), err
		})
	}
	const joinedLine = "Joined a pull in progress" // at debug level, once per caller after the first
	if !waitUntil(30*time.Second, func() bool { return strings.Count(d.Log(), joinedLine) >= pulls-1 }) {
		t.Errorf("%d of %d pulls joined the first one", strings.Count(d.Log(), joinedLine), pulls-1)
	}
	release()
	wg.Wait()
	for i := range pulls {
		if errs[i] != nil || !strings.HasSuffix(ids[i], imageID(img)) {
			t.Errorf("pull %d: %q, %v", i, ids[i], errs[i])
		}
	}
	blobs := []string{img.ConfigDigest}
	for _, l := range img.Layers {
		blobs = append(blobs, l.Digest)
	}
	for _, blob := range blobs {
		n, err := reg.BlobFetches(context.Background(), img.Repository, blob)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("blob %s was fetched %d times by %d concurrent pulls, want 1", blob, n, pulls)
		}
	}
	if n := strings.Count(d.Log(), "Pulled image"); n != 1 {
		t.Errorf("the daemon logged %d completed pulls, want 1", n)
	}
	if imgs := listImages(t, d); len(imgs) != 1 || imgs[0].ID != imageID(img) {
		t.Errorf("images after the pulls: %+v", imgs)
	}
	d.Stop(t)
}

func TestImagePullCancelledLeavesNothing(t *testing.T) {
	reg, cat := ownRegistry(t, "", "", fixture.RefMultilayer)
	img := cat.MustImage(fixture.RefMultilayer)
	cases := []struct {
		name string
		code codes.Code
		// cut returns the pull's context: it ends mid-way.
		cut func(t *testing.T, d *harness.Daemon) (context.Context, context.CancelFunc)
	}{
		{name: "client deadline", code: codes.DeadlineExceeded,
			cut: func(*testing.T, *harness.Daemon) (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 3*time.Second)
			}},
		{name: "cancelled after layers are stored", code: codes.Canceled, cut: cancelOnStoredLayer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proxy := startSlowProxy(t, reg.Addr(), 5<<20) // about ten seconds for the image
			d := harness.Start(t, harness.Options{Args: writeRegistriesConf(t, proxy.Addr(), reg.Addr())})
			cri := d.Client(t)
			fsBefore := imageFsUsed(t, d)
			ctx, cancel := tc.cut(t, d)
			defer cancel()
			_, err := cri.PullImage(ctx, pullSpec(proxy.Addr()+"/"+fixture.RefMultilayer))
			if status.Code(err) != tc.code {
				t.Fatalf("a pull cut by the client: %v; want %s", err, tc.code)
			}
			if got := proxy.forwarded.Load(); got == 0 || got >= int64(compressedSize(img)) {
				t.Fatalf("the pull was not cut mid-way: %d bytes passed the proxy", got)
			}
			if !waitUntil(20*time.Second, func() bool { return proxy.open.Load() == 0 }) {
				t.Errorf("the daemon still has %d registry connections open after the caller gave up", proxy.open.Load())
			}
			checkNoPartialImage(t, d, fsBefore)
			if err := d.WaitLog("Image pull failed", 5*time.Second); err != nil {
				t.Error(err)
			}
			// The store is sound: the image pulls in full afterwards (at
			// full speed, straight from the registry).
			resp, err := cri.PullImage(context.Background(), pullSpec(cat.Reference(fixture.RefMultilayer)))
			if err != nil || resp.ImageRef != imageID(img) {
				t.Errorf("pulling again after the cancelled pull: %v, %v", resp, err)
			}
			d.Stop(t)
		})
	}
}

// checkNoPartialImage waits for the daemon to clean a failed pull up and
// requires no image, no layer folder, no temporary file and image file
// system usage back near fsBefore.
func checkNoPartialImage(t *testing.T, d *harness.Daemon, fsBefore uint64) {
	t.Helper()
	if !waitUntil(20*time.Second, func() bool { return len(storageLeftovers(t, d)) == 0 }) {
		t.Errorf("the failed pull left storage behind: %v", storageLeftovers(t, d))
	}
	if imgs := listImages(t, d); len(imgs) != 0 {
		t.Errorf("crictl images after a failed pull: %+v", imgs)
	}
	if after := imageFsUsed(t, d); after > fsBefore+1<<20 {
		t.Errorf("image file system grew from %d to %d bytes after a failed pull", fsBefore, after)
	}
}

func TestImageRegistryKilledMidPull(t *testing.T) {
	reg, cat := ownRegistry(t, "", "", fixture.RefMultilayer)
	proxy := startSlowProxy(t, reg.Addr(), 5<<20) // about ten seconds for the image
	d := harness.Start(t, harness.Options{Args: append(writeRegistriesConf(t, proxy.Addr()), "--pull-progress-timeout", "15s")})
	cri := d.Client(t)
	ref := proxy.Addr() + "/" + fixture.RefMultilayer
	fsBefore := imageFsUsed(t, d)
	result := make(chan error, 1)
	go func() {
		_, err := cri.PullImage(context.Background(), pullSpec(ref))
		result <- err
	}()
	total := int64(compressedSize(cat.MustImage(fixture.RefMultilayer)))
	// Cut after a layer is stored, so that layers, not only temporary
	// files, must be cleaned up.
	if !waitUntil(60*time.Second, func() bool { return slices.ContainsFunc(storageLeftovers(t, d), isLayerDir) }) {
		t.Fatalf("the pull stored no layer: %d bytes passed", proxy.forwarded.Load())
	}
	// The registry host goes away: the server dies, nothing listens.
	if err := reg.Stop(); err != nil {
		t.Fatal(err)
	}
	proxy.StopAccepting()
	if got := proxy.forwarded.Load(); got >= total {
		t.Fatalf("the pull finished before the registry was stopped (%d of %d bytes)", got, total)
	}
	var err error
	select {
	case err = <-result:
	case <-time.After(60 * time.Second):
		t.Fatalf("the pull did not end after the registry died\n%s", logTail(d, 3000))
	}
	t.Logf("pull error: %v", err)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), proxy.Addr()) {
		t.Errorf("a pull from a registry that died: %v; want Unavailable naming %s", err, proxy.Addr())
	}
	checkNoPartialImage(t, d, fsBefore)
	d.Stop(t)
}

func TestImageErrorCodes(t *testing.T) {
	env := sharedEnv(t)
	d := harness.Start(t, harness.Options{Shared: env})
	cri := d.Client(t)
	addr := env.Catalog.Registry
	busybox := env.Catalog.MustImage(fixture.RefBusybox)
	unknownDigest := "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		ref  string
		code codes.Code
		want string // in the message besides the reference
	}{
		{ref: addr + "/arbor-test/UPPER:latest", code: codes.InvalidArgument},
		{ref: addr + "/arbor-test/busybox@sha256:abc", code: codes.InvalidArgument},
		{ref: "dir:/tmp/arbor-no-such-dir", code: codes.InvalidArgument},
		{ref: addr + "/arbor-test/no-such-image:latest", code: codes.NotFound},
		{ref: addr + "/arbor-test/busybox:no-such-tag", code: codes.NotFound},
		{ref: addr + "/" + busybox.Repository + "@" + unknownDigest, code: codes.NotFound},
		{ref: unusedAddr(t) + "/arbor-test/busybox:latest", code: codes.Unavailable},
	}
	for _, tc := range cases {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := cri.PullImage(context.Background(), pullSpec(tc.ref))
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.ref) {
				t.Errorf("PullImage: %v; want %s naming %q", err, tc.code, tc.ref)
			}
		})
	}
	t.Run("empty reference", func(t *testing.T) {
		_, err := cri.PullImage(context.Background(), pullSpec(""))
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("PullImage(\"\"): %v", err)
		}
	})
	t.Run("status and removal of an absent image", func(t *testing.T) {
		ref := env.Image(fixture.RefBusybox)
		st, err := cri.ImageStatus(context.Background(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil || st.Image != nil {
			t.Errorf("ImageStatus of an absent image: %v, %v; want no image and no error", st, err)
		}
		if _, err := cri.RemoveImage(context.Background(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
			t.Errorf("RemoveImage of an absent image must succeed: %v", err)
		}
	})
	if imgs := listImages(t, d); len(imgs) != 0 {
		t.Errorf("failed pulls left images: %+v", imgs)
	}
	d.Stop(t)
}

func TestImageAuthenticatedRegistry(t *testing.T) {
	const user, pass = "arbor", "s3cret-pass"
	reg, cat := ownRegistry(t, user, pass, fixture.RefBusybox)
	d := harness.Start(t, harness.Options{Args: writeRegistriesConf(t, reg.Addr())})
	ref := cat.Reference(fixture.RefBusybox)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "no credentials"},
		{name: "wrong password", args: []string{"--creds", user + ":wrong"}},
		{name: "unknown user", args: []string{"--creds", "nobody:" + pass}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := d.Crictl(append(append([]string{"pull"}, tc.args...), ref)...)
			if err == nil {
				t.Fatalf("pull succeeded:\n%s", out)
			}
			if !strings.Contains(out, "Unauthenticated") && !strings.Contains(out, "PermissionDenied") {
				t.Errorf("want Unauthenticated or PermissionDenied: %v", err)
			}
			if !strings.Contains(out, reg.Addr()) {
				t.Errorf("the error does not name the registry %s: %v", reg.Addr(), err)
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "rpc error") {
					t.Logf("crictl pull: %s", line)
					break
				}
			}
		})
	}
	if imgs := listImages(t, d); len(imgs) != 0 {
		t.Fatalf("refused pulls left images: %+v", imgs)
	}
	if got := crictlPull(t, d, ref, "--creds", user+":"+pass); got != imageID(cat.MustImage(fixture.RefBusybox)) {
		t.Errorf("pull with the right credentials gave %q", got)
	}
	// The CRI auth field (base64 user:password) works as well.
	if _, err := d.Crictl("rmi", ref); err != nil {
		t.Fatal(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	req := pullSpec(ref)
	req.Auth = &runtimeapi.AuthConfig{Auth: auth}
	if _, err := d.Client(t).PullImage(context.Background(), req); err != nil {
		t.Errorf("pull with the auth field: %v", err)
	}
	d.Stop(t)
}

func TestImagePinned(t *testing.T) {
	env := sharedEnv(t)
	pinned := env.Image(fixture.RefBusybox)
	d := harness.Start(t, harness.Options{Shared: env, Args: []string{
		"--pinned-images", pinned, "--pinned-images", env.Catalog.Registry + "/arbor-test/user-*"}})
	second := env.Image(fixture.RefBusyboxVersioned)
	busyboxID := crictlPull(t, d, pinned)
	crictlPull(t, d, second)
	for _, tc := range []struct{ name, ref string }{
		{"by pattern", env.Image(fixture.RefUserName)},
		{"pause image", "registry.k8s.io/pause:3.10"},
		{"by name", pinned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := crictlPull(t, d, tc.ref)
			if st, _ := inspectImage(t, d, tc.ref); !st.Pinned {
				t.Errorf("inspecti %s: pinned false", tc.ref)
			}
			if img := imageByID(listImages(t, d), id); img == nil || !img.Pinned {
				t.Errorf("crictl images: %+v, want pinned", img)
			}
			for _, rm := range []string{tc.ref, id} {
				out, err := d.Crictl("rmi", rm)
				if err == nil || !strings.Contains(out, "FailedPrecondition") || !strings.Contains(out, "pinned") {
					t.Errorf("crictl rmi %s of a pinned image: %v", rm, err)
				}
			}
			if imageByID(listImages(t, d), id) == nil {
				t.Error("the pinned image was removed")
			}
		})
	}
	// An unpinned tag of the pinned image can be removed; the image stays.
	if _, err := d.Crictl("rmi", second); err != nil {
		t.Errorf("removing the unpinned tag %s: %v", second, err)
	}
	if img := imageByID(listImages(t, d), busyboxID); img == nil || !slices.Equal(img.RepoTags, []string{pinned}) {
		t.Errorf("after untagging %s: %+v", second, img)
	}
	unpinned := env.Image(fixture.RefMultilayer)
	id := crictlPull(t, d, unpinned)
	if st, _ := inspectImage(t, d, unpinned); st.Pinned {
		t.Error("an image no pattern names is pinned")
	}
	removeAndCheck(t, d, unpinned, id)
	d.Stop(t)
}

func TestImageFsInfoFollowsPullAndRemove(t *testing.T) {
	env := sharedEnv(t)
	d := harness.Start(t, harness.Options{Shared: env})
	ref := env.Image(fixture.RefMultilayer)
	empty := imageFsUsed(t, d)
	crictlPull(t, d, ref)
	pulled := imageFsUsed(t, d)
	const layersData = 50 << 20 // the five data layers
	if pulled < empty+layersData {
		t.Errorf("image fs grew from %d to %d bytes after pulling a 50 MiB image", empty, pulled)
	}
	if _, err := d.Crictl("rmi", ref); err != nil {
		t.Fatal(err)
	}
	removed := imageFsUsed(t, d)
	if removed+layersData > pulled {
		t.Errorf("image fs went from %d to %d bytes after removing the image", pulled, removed)
	}
	t.Logf("image fs used: empty %d, pulled %d, removed %d bytes", empty, pulled, removed)
	d.Stop(t)
}

func TestImagePullTimeAgainstSkopeo(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skipf("skopeo is not installed: %v", err)
	}
	env := sharedEnv(t)
	d := harness.Start(t, harness.Options{Shared: env})
	ref := env.Image(fixture.RefMultilayer)
	var arbor, sko []time.Duration
	for range 3 {
		start := time.Now()
		crictlPull(t, d, ref)
		arbor = append(arbor, time.Since(start))
		if len(arbor) == 3 {
			t.Logf("daemon after the pull: VmRSS %s, VmHWM %s", daemonStatus(t, d, "VmRSS"), daemonStatus(t, d, "VmHWM"))
		}
		if _, err := d.Crictl("rmi", ref); err != nil {
			t.Fatal(err)
		}
		sko = append(sko, skopeoCopy(t, skopeo, ref))
	}
	t.Logf("pull of %s (about 50 MiB): arbor via crictl %v, skopeo copy %v", fixture.RefMultilayer, arbor, sko)
	d.Stop(t)
}
