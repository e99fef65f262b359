// Package bench measures a CRI runtime from the outside, as a kubelet sees
// it: it drives any CRI socket with real RPCs (pods brought up and torn
// down, large container lists, resident memory with running pods) and,
// for comparison, plain runc on the same host, and reports per-call
// median and p99 latencies with ratios between runtimes. Everything a run
// makes carries the run's ID and is removed at the end, errors and
// cancellation included.
package bench

import (
	"math"
	"slices"
	"time"
)

// Summary condenses the samples of one call.
type Summary struct {
	N      int           `json:"n"`
	Median time.Duration `json:"median_ns"`
	P99    time.Duration `json:"p99_ns"`
	Min    time.Duration `json:"min_ns"`
	Max    time.Duration `json:"max_ns"`
	Mean   time.Duration `json:"mean_ns"`
}

// Summarize returns the summary of samples; the zero Summary when there
// are none. samples is not modified.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Summary{
		N: len(s), Median: median(s), P99: percentile(s, 99),
		Min: s[0], Max: s[len(s)-1], Mean: sum / time.Duration(len(s)),
	}
}

// Median returns the middle of samples (the mean of the two middle values
// for an even count); 0 when there are none.
func Median(samples []time.Duration) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return median(s)
}

// Percentile returns the nearest-rank p-th percentile of samples (the
// smallest value with at least p% of samples at or below it), p in (0,100];
// 0 when there are none.
func Percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return percentile(s, p)
}

// median of sorted, non-empty s.
func median(s []time.Duration) time.Duration {
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return s[mid-1] + (s[mid]-s[mid-1])/2
}

// percentile of sorted, non-empty s, nearest rank.
func percentile(s []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Ratio returns a/b and whether it is defined (b > 0).
func Ratio(a, b time.Duration) (float64, bool) {
	if b <= 0 {
		return 0, false
	}
	return float64(a) / float64(b), true
}

// Samples collects durations by call name, in first-seen call order.
type Samples struct {
	order []string
	by    map[string][]time.Duration
}

// Add records one duration of call.
func (s *Samples) Add(call string, d time.Duration) {
	if s.by == nil {
		s.by = map[string][]time.Duration{}
	}
	if _, ok := s.by[call]; !ok {
		s.order = append(s.order, call)
	}
	s.by[call] = append(s.by[call], d)
}

// Calls returns the call names in the order they were first recorded.
func (s *Samples) Calls() []string { return slices.Clone(s.order) }

// Get returns the durations recorded for call.
func (s *Samples) Get(call string) []time.Duration { return s.by[call] }

// Merge adds every sample of o to s.
func (s *Samples) Merge(o *Samples) {
	for _, c := range o.order {
		for _, d := range o.by[c] {
			s.Add(c, d)
		}
	}
}

// Summaries returns the summary of every call, in call order.
func (s *Samples) Summaries() []CallSummary {
	out := make([]CallSummary, 0, len(s.order))
	for _, c := range s.order {
		out = append(out, CallSummary{Call: c, Summary: Summarize(s.by[c])})
	}
	return out
}

// CallSummary is the summary of one named call.
type CallSummary struct {
	Call string `json:"call"`
	Summary
}
