package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run: per runtime and workload the summary of
// every call, ratios to the first runtime, and the runc floor.
type Report struct {
	RunID    string           `json:"run_id"`
	Started  time.Time        `json:"started"`
	Duration time.Duration    `json:"duration_ns"`
	Settings Settings         `json:"settings"`
	Runtimes []*RuntimeReport `json:"runtimes"`
	Floor    *WorkloadReport  `json:"floor,omitempty"`
}

// RuntimeReport is what one socket measured.
type RuntimeReport struct {
	Socket    string           `json:"socket"`
	Name      string           `json:"name"` // runtime name and version
	Workloads []WorkloadReport `json:"workloads"`
	RSS       []RSSReport      `json:"rss,omitempty"` // one per round
	// Ratios are this runtime's median and p99 over the first runtime's,
	// per call; absent for the first runtime.
	Ratios []CallRatio `json:"ratios,omitempty"`

	samples map[string]*Samples
}

// WorkloadReport holds the call summaries of one workload.
type WorkloadReport struct {
	Workload string        `json:"workload"`
	Calls    []CallSummary `json:"calls"`
}

// CallRatio compares one call with the same call on the first runtime.
type CallRatio struct {
	Workload string  `json:"workload"`
	Call     string  `json:"call"`
	Median   float64 `json:"median"`
	P99      float64 `json:"p99"`
}

// add merges a workload's samples into the runtime's.
func (r *RuntimeReport) add(workload string, s *Samples) {
	if s == nil {
		return
	}
	if r.samples == nil {
		r.samples = map[string]*Samples{}
	}
	if r.samples[workload] == nil {
		r.samples[workload] = &Samples{}
		r.Workloads = append(r.Workloads, WorkloadReport{Workload: workload})
	}
	r.samples[workload].Merge(s)
}

// summarize fills Workloads from the samples and Ratios against first.
func (r *RuntimeReport) summarize(first *RuntimeReport) {
	for i := range r.Workloads {
		r.Workloads[i].Calls = r.samples[r.Workloads[i].Workload].Summaries()
	}
	if first == r {
		return
	}
	r.Ratios = nil
	for _, w := range r.Workloads {
		for _, c := range w.Calls {
			base, ok := first.call(w.Workload, c.Call)
			if !ok {
				continue
			}
			med, ok1 := Ratio(c.Median, base.Median)
			p99, ok2 := Ratio(c.P99, base.P99)
			if ok1 && ok2 {
				r.Ratios = append(r.Ratios, CallRatio{Workload: w.Workload, Call: c.Call, Median: med, P99: p99})
			}
		}
	}
}

// call finds the summary of call in workload.
func (r *RuntimeReport) call(workload, call string) (Summary, bool) {
	for _, w := range r.Workloads {
		if w.Workload != workload {
			continue
		}
		for _, c := range w.Calls {
			if c.Call == call {
				return c.Summary, true
			}
		}
	}
	return Summary{}, false
}

// Call returns the summary of call in workload on the runtime; false when
// it was not measured.
func (r *RuntimeReport) Call(workload, call string) (Summary, bool) { return r.call(workload, call) }

// WriteJSON writes the report, indented, to path.
func (rep *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding report: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// WriteTable prints the report as aligned tables: one per workload with
// median and p99 per runtime and the ratios to the first runtime, then
// the floor and the memory figures.
func (rep *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "cribench run %s, %d round(s), %s, started %s\n", rep.RunID, rep.Settings.Rounds,
		rep.Duration.Round(time.Millisecond), rep.Started.Format(time.RFC3339))
	for i, r := range rep.Runtimes {
		fmt.Fprintf(w, "  [%d] %s on %s\n", i+1, r.Name, r.Socket)
	}
	for _, wl := range rep.workloads() {
		fmt.Fprintf(w, "\n%s: %s\n", wl, rep.Settings.describe(wl))
		rep.writeWorkload(w, wl)
	}
	if rep.Floor != nil {
		fmt.Fprintf(w, "\nfloor: %s\n", rep.Settings.describe("floor"))
		rep.writeFloor(w)
	}
	rep.writeRSS(w)
	return nil
}

// workloads lists the workload names in the order first measured.
func (rep *Report) workloads() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rep.Runtimes {
		for _, w := range r.Workloads {
			if !seen[w.Workload] {
				seen[w.Workload] = true
				out = append(out, w.Workload)
			}
		}
	}
	return out
}

func (rep *Report) writeWorkload(w io.Writer, wl string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"call", "n"}
	for i := range rep.Runtimes {
		head = append(head, fmt.Sprintf("[%d] median", i+1), fmt.Sprintf("[%d] p99", i+1))
	}
	for i := 1; i < len(rep.Runtimes); i++ {
		head = append(head, fmt.Sprintf("[%d]/[1] median", i+1), fmt.Sprintf("[%d]/[1] p99", i+1))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, call := range rep.calls(wl) {
		fmt.Fprintln(tw, strings.Join(rep.row(wl, call), "\t")+"\t")
	}
	tw.Flush()
}

// calls lists the call names of wl over every runtime, in order.
func (rep *Report) calls(wl string) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rep.Runtimes {
		for _, w := range r.Workloads {
			if w.Workload != wl {
				continue
			}
			for _, c := range w.Calls {
				if !seen[c.Call] {
					seen[c.Call] = true
					out = append(out, c.Call)
				}
			}
		}
	}
	return out
}

func (rep *Report) row(wl, call string) []string {
	first, _ := rep.Runtimes[0].call(wl, call)
	row := []string{call, fmt.Sprint(first.N)}
	for _, r := range rep.Runtimes {
		s, ok := r.call(wl, call)
		row = append(row, fmtDur(s.Median, ok), fmtDur(s.P99, ok))
	}
	for _, r := range rep.Runtimes[1:] {
		s, _ := r.call(wl, call)
		row = append(row, fmtRatio(Ratio(s.Median, first.Median)), fmtRatio(Ratio(s.P99, first.P99)))
	}
	return row
}

func (rep *Report) writeFloor(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"call", "n", "median", "p99"}
	for i := range rep.Runtimes {
		head = append(head, fmt.Sprintf("[%d]/floor median", i+1), fmt.Sprintf("[%d]/floor p99", i+1))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, c := range rep.Floor.Calls {
		row := []string{c.Call, fmt.Sprint(c.N), fmtDur(c.Median, true), fmtDur(c.P99, true)}
		for _, r := range rep.Runtimes {
			s, ok := r.call("pods", c.Call)
			if !ok {
				row = append(row, "", "")
				continue
			}
			row = append(row, fmtRatio(Ratio(s.Median, c.Median)), fmtRatio(Ratio(s.P99, c.P99)))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
}

func (rep *Report) writeRSS(w io.Writer) {
	for i, r := range rep.Runtimes {
		for _, m := range r.RSS {
			fmt.Fprintf(w, "\nrss [%d] pid %d: %s idle, %s with %d pods (%+.1f MiB)\n", i+1, m.PID,
				fmtKiB(m.BaselineKiB), fmtKiB(m.WithPodsKiB), m.Pods, float64(m.WithPodsKiB-m.BaselineKiB)/1024)
		}
	}
}

func fmtDur(d time.Duration, ok bool) string {
	switch {
	case !ok:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func fmtRatio(r float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2fx", r)
}

func fmtKiB(k int64) string { return fmt.Sprintf("%.1f MiB", float64(k)/1024) }
