package fault

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestParseMode(t *testing.T) {
	cases := []struct {
		in      string
		want    Mode
		wantErr bool
	}{
		{in: "panic", want: Mode{Kind: Panic}},
		{in: "error", want: Mode{Kind: Error}},
		{in: "exit", want: Mode{Kind: Exit}},
		{in: "delay=250ms", want: Mode{Kind: Delay, Delay: 250 * time.Millisecond}},
		{in: "delay=soon", wantErr: true},
		{in: "delay=-1s", wantErr: true},
		{in: "explode", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMode(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ParseMode(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}

func TestCountAndPoint(t *testing.T) {
	in := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	in.Arm("CreateContainer", Mode{Kind: Error}, 2)
	ctx := context.Background()
	for i := range 2 {
		if err := in.Point(ctx, "CreateContainer"); !errors.Is(err, ErrInjected) {
			t.Fatalf("call %d: want ErrInjected, got %v", i, err)
		}
	}
	if err := in.Point(ctx, "CreateContainer"); err != nil {
		t.Fatalf("third call must pass, got %v", err)
	}
	if len(in.List()) != 0 {
		t.Fatalf("nothing should stay armed: %v", in.List())
	}
}

func TestPanicAndDelay(t *testing.T) {
	in := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	in.Arm("p", Mode{Kind: Panic}, 1)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("armed panic did not panic")
			}
		}()
		_ = in.Point(context.Background(), "p")
	}()

	in.Arm("d", Mode{Kind: Delay, Delay: time.Hour}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := in.Point(ctx, "d"); err != nil {
		t.Fatalf("a delay ends with its context and lets the step go on: %v", err)
	}
}

func TestNotify(t *testing.T) {
	in := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ch := in.Notify("listener")
	in.Arm("listener", Mode{Kind: Panic}, 1)
	select {
	case <-ch:
	default:
		t.Fatal("arming did not notify")
	}
	var nilIn *Injector
	if _, ok := nilIn.Take("x"); ok {
		t.Fatal("a nil injector must never fire")
	}
}
