package main

import (
	"slices"
	"testing"
)

func TestPgrepFilter(t *testing.T) {
	procs := []process{
		{pid: 1, ppid: 0, session: 1, comm: "nginx", cmdline: "nginx: master process nginx -g daemon off;", startTicks: 10},
		{pid: 7, ppid: 1, session: 1, comm: "sleep", cmdline: "sleep 1000", startTicks: 20},
		{pid: 9, ppid: 1, session: 9, comm: "sleep", cmdline: "sleep 5", startTicks: 30},
		{pid: 12, ppid: 7, session: 9, comm: "sh", cmdline: "sh -c top", startTicks: 40},
	}
	cases := []struct {
		args []string
		want []int
	}{
		{[]string{"sleep"}, []int{7, 9}},
		{[]string{"-x", "slee"}, nil},
		{[]string{"-f", "master process"}, []int{1}},
		{[]string{"master"}, nil},
		{[]string{"-n", "sleep"}, []int{9}},
		{[]string{"-o", "sleep"}, []int{7}},
		{[]string{"-v", "sleep"}, []int{1, 12}},
		{[]string{"-P", "1"}, []int{7, 9}},
		{[]string{"-P1", "sleep"}, []int{7, 9}},
		{[]string{"-s", "9"}, []int{9, 12}},
		{[]string{"-fl", "top"}, []int{12}},
	}
	for _, tc := range cases {
		q, err := parsePgrep(tc.args)
		if err != nil {
			t.Errorf("parsePgrep(%q): %v", tc.args, err)
			continue
		}
		var got []int
		for _, p := range q.filter(procs) {
			got = append(got, p.pid)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("pgrep %q matched %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestPgrepRejectsBadArguments(t *testing.T) {
	for _, args := range [][]string{{}, {"-z", "x"}, {"a", "b"}, {"-P", "x"}, {"("}} {
		if _, err := parsePgrep(args); err == nil {
			t.Errorf("parsePgrep(%q) accepted", args)
		}
	}
}

func TestPgrepLongFormat(t *testing.T) {
	q, err := parsePgrep([]string{"-lf", "sleep"})
	if err != nil {
		t.Fatal(err)
	}
	if got := q.format(process{pid: 7, comm: "sleep", cmdline: "sleep 1000"}); got != "7 sleep 1000" {
		t.Errorf("format = %q", got)
	}
}
