package bench

import (
	"math"
	"slices"
	"testing"
	"time"
)

func ms(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x * float64(time.Millisecond))
	}
	return out
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want time.Duration
	}{
		{"empty", nil, 0},
		{"one", ms(7), 7 * time.Millisecond},
		{"odd unsorted", ms(9, 1, 5), 5 * time.Millisecond},
		{"even is the mean of the middle two", ms(4, 1, 3, 2), 2500 * time.Microsecond},
		{"repeated values", ms(2, 2, 2, 10), 2 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Median(tc.in); got != tc.want {
				t.Errorf("Median = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // 100ms .. 1ms, reversed
	}
	fifty := hundred[50:] // 50ms .. 1ms
	for _, tc := range []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one", ms(3), 99, 3 * time.Millisecond},
		{"p99 of 100 is the 99th", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"p50 of 100 is the 50th", hundred, 50, 50 * time.Millisecond},
		{"p99 of 50 is the max", fifty, 99, 50 * time.Millisecond},
		{"p99 of 3 is the max", ms(1, 2, 30), 99, 30 * time.Millisecond},
		{"tiny p is the min", ms(5, 1, 9), 0.001, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.in, tc.p); got != tc.want {
				t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarizeDoesNotReorderInput(t *testing.T) {
	in := ms(5, 1, 9, 3)
	orig := slices.Clone(in)
	s := Summarize(in)
	if !slices.Equal(in, orig) {
		t.Errorf("input reordered to %v", in)
	}
	want := Summary{N: 4, Median: 4 * time.Millisecond, P99: 9 * time.Millisecond,
		Min: time.Millisecond, Max: 9 * time.Millisecond, Mean: 4500 * time.Microsecond}
	if s != want {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if (Summarize(nil) != Summary{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", Summarize(nil))
	}
}

func TestRatio(t *testing.T) {
	for _, tc := range []struct {
		name   string
		a, b   time.Duration
		want   float64
		wantOK bool
	}{
		{"slower", 3 * time.Millisecond, 2 * time.Millisecond, 1.5, true},
		{"faster", time.Millisecond, 4 * time.Millisecond, 0.25, true},
		{"equal", time.Second, time.Second, 1, true},
		{"zero base", time.Second, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Ratio(tc.a, tc.b)
			if ok != tc.wantOK || math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("Ratio = %v, %v; want %v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestRuntimeRatiosAgainstFirst(t *testing.T) {
	first, second := &RuntimeReport{Name: "a"}, &RuntimeReport{Name: "b"}
	s1, s2 := &Samples{}, &Samples{}
	for _, d := range ms(10, 20, 30) {
		s1.Add("RunPodSandbox", d)
		s2.Add("RunPodSandbox", 2*d)
	}
	s2.Add("only-second", time.Millisecond)
	first.add(WorkloadPods, s1)
	second.add(WorkloadPods, s2)
	first.summarize(first)
	second.summarize(first)
	if len(first.Ratios) != 0 {
		t.Errorf("first runtime has ratios %v", first.Ratios)
	}
	want := []CallRatio{{Workload: WorkloadPods, Call: "RunPodSandbox", Median: 2, P99: 2}}
	if !slices.Equal(second.Ratios, want) {
		t.Errorf("ratios = %v, want %v", second.Ratios, want)
	}
	if got, _ := second.Call(WorkloadPods, "RunPodSandbox"); got.Median != 40*time.Millisecond || got.P99 != 60*time.Millisecond {
		t.Errorf("second RunPodSandbox = %+v, want median 40ms p99 60ms", got)
	}
}

func TestSamplesKeepCallOrderAndMerge(t *testing.T) {
	var a, b Samples
	a.Add("Run", time.Millisecond)
	a.Add("Create", time.Millisecond)
	b.Add("Start", time.Millisecond)
	b.Add("Run", 3*time.Millisecond)
	a.Merge(&b)
	if got := a.Calls(); !slices.Equal(got, []string{"Run", "Create", "Start"}) {
		t.Errorf("calls = %v", got)
	}
	if got := a.Get("Run"); !slices.Equal(got, ms(1, 3)) {
		t.Errorf("Run samples = %v", got)
	}
}
