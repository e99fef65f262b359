package cri

import "testing"

func TestDigestedRef(t *testing.T) {
	const (
		a = "127.0.0.1:5000/busybox@sha256:aaaa"
		b = "127.0.0.1:5000/mirror/busybox@sha256:bbbb"
	)
	for _, tc := range []struct {
		digests []string
		names   []string
		want    string
	}{
		{nil, []string{"127.0.0.1:5000/busybox:1"}, ""},
		{[]string{a, b}, []string{"127.0.0.1:5000/mirror/busybox:1"}, b},
		{[]string{a, b}, []string{"127.0.0.1:5000/mirror/busybox@sha256:bbbb"}, b},
		{[]string{a, b}, []string{"127.0.0.1:5000/busybox"}, a},
		{[]string{b, a}, []string{"busybox", "127.0.0.1:5000/busybox:1"}, a},
		// An image named by its ID matches no repository.
		{[]string{b, a}, []string{"0123abcd"}, b},
	} {
		if got := digestedRef(tc.digests, tc.names...); got != tc.want {
			t.Errorf("digestedRef(%q, %q) = %q, want %q", tc.digests, tc.names, got, tc.want)
		}
	}
}

func TestRepository(t *testing.T) {
	for ref, want := range map[string]string{
		"127.0.0.1:5000/busybox:1":           "127.0.0.1:5000/busybox",
		"127.0.0.1:5000/busybox":             "127.0.0.1:5000/busybox",
		"127.0.0.1:5000/busybox@sha256:aaaa": "127.0.0.1:5000/busybox",
		"busybox:1@sha256:aaaa":              "busybox",
		"localhost:5000/a/b":                 "localhost:5000/a/b",
	} {
		if got := repository(ref); got != want {
			t.Errorf("repository(%q) = %q, want %q", ref, got, want)
		}
	}
}
