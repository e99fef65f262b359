package images

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// stalledEnv is a registry behind a proxy that stalls the image's last
// layer, and a Service that pulls through the proxy.
type stalledEnv struct {
	e     *testEnv
	reg   *testRegistry
	proxy *stallProxy
	img   builtImage
	ref   string
}

func newStalledEnv(t *testing.T, mutate func(*Config)) stalledEnv {
	t.Helper()
	reg := startRegistry(t, registryOptions{})
	img := testImage{layers: []string{"first layer", "stalled layer with some more bytes in it"}}.build(t)
	img.push(t, reg.addr+"/arbor/slow:v1", nil)
	proxy := startStallProxy(t, reg.addr, img.layerBlobs[1])
	e := newEnv(t, envOptions{registries: []string{proxy.addr}, mutate: mutate})
	return stalledEnv{e: e, reg: reg, proxy: proxy, img: img, ref: proxy.addr + "/arbor/slow:v1"}
}

// waitFor polls cond (bounded) and fails the test if it never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// pullResultOf is one Pull outcome.
type pullResultOf struct {
	id  string
	err error
}

// startPulls starts one Pull per context and returns their results channel.
func (s stalledEnv) startPulls(wg *sync.WaitGroup, ctxs []context.Context) []chan pullResultOf {
	out := make([]chan pullResultOf, len(ctxs))
	for i, ctx := range ctxs {
		out[i] = make(chan pullResultOf, 1)
		wg.Go(func() {
			id, err := s.e.svc.Pull(ctx, s.ref, nil)
			out[i] <- pullResultOf{id, err}
		})
	}
	return out
}

func TestConcurrentPullsShareOneDownload(t *testing.T) {
	s := newStalledEnv(t, nil)
	downloads := &downloadLog{}
	s.e.svc.SetDownloadObserver(downloads)
	var wg sync.WaitGroup
	defer wg.Wait()
	results := s.startPulls(&wg, []context.Context{context.Background(), context.Background(), context.Background()})
	<-s.proxy.stalled
	waitFor(t, "three callers on one pull", func() bool { return s.e.svc.flights.waiting() == 3 })
	s.proxy.unblock()
	for i, ch := range results {
		r := <-ch
		if r.err != nil || r.id != s.img.configID {
			t.Errorf("pull %d = %s, %v; want %s", i, r.id, r.err, s.img.configID)
		}
	}
	for _, blob := range s.img.layerBlobs {
		if n := s.reg.blobGets(t, blob); n != 1 {
			t.Errorf("registry served blob %s %d times, want 1", blob, n)
		}
	}
	if n := s.e.logs.count("Pulled image"); n != 1 {
		t.Errorf("%d pull summaries logged, want 1", n)
	}
	if got := downloads.all(); len(got) != 1 || got[0].fetched != 2 || got[0].reused != 0 || got[0].bytes == 0 {
		t.Errorf("downloads observed: %+v, want one that fetched both layers", got)
	}
}

// download is one ObserveDownload call.
type download struct {
	bytes           uint64
	fetched, reused int
}

// downloadLog is a DownloadObserver that keeps every call.
type downloadLog struct {
	mu   sync.Mutex
	seen []download
}

func (d *downloadLog) ObserveDownload(bytes uint64, fetched, reused int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = append(d.seen, download{bytes, fetched, reused})
}

func (d *downloadLog) all() []download {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]download(nil), d.seen...)
}

func TestCancelledCallerDoesNotCancelSharedPull(t *testing.T) {
	s := newStalledEnv(t, nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	cancelled, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := s.startPulls(&wg, []context.Context{cancelled, context.Background()})
	<-s.proxy.stalled
	waitFor(t, "two callers on one pull", func() bool { return s.e.svc.flights.waiting() == 2 })
	cancel()
	if r := <-results[0]; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", r.err)
	}
	s.proxy.unblock()
	if r := <-results[1]; r.err != nil || r.id != s.img.configID {
		t.Fatalf("remaining caller got %s, %v; want %s", r.id, r.err, s.img.configID)
	}
}

func TestPullCancelledByAllCallersLeavesNothing(t *testing.T) {
	s := newStalledEnv(t, nil)
	var wg sync.WaitGroup
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	results := s.startPulls(&wg, []context.Context{ctx1, ctx2})
	<-s.proxy.stalled
	waitFor(t, "first layer committed", func() bool { return s.e.layerCount(t) == 1 })
	waitFor(t, "two callers on one pull", func() bool { return s.e.svc.flights.waiting() == 2 })
	cancel1()
	cancel2()
	wg.Wait()
	for i, ch := range results {
		if r := <-ch; !errors.Is(r.err, context.Canceled) {
			t.Errorf("caller %d got %v, want context.Canceled", i, r.err)
		}
	}
	s.e.svc.flights.close() // wait for the cancelled pull to clean up
	if n, m := s.e.layerCount(t), s.e.imageCount(t); n != 0 || m != 0 {
		t.Fatalf("cancelled pull left %d layers and %d images", n, m)
	}
}

func TestPullProgressTimeout(t *testing.T) {
	s := newStalledEnv(t, func(c *Config) { c.PullProgressTimeout = time.Second })
	_, err := s.e.svc.Pull(context.Background(), s.ref, nil)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errStalled) {
		t.Fatalf("stalled pull: got %v, want ErrUnavailable (no progress)", err)
	}
	if n := s.e.layerCount(t); n != 0 {
		t.Fatalf("stalled pull left %d layers", n)
	}
}
