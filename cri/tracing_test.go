package cri

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestStepSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	s := NewRuntimeServer(RuntimeInfo{}, Deps{Tracer: tp.Tracer("test")}, nil)
	ctx, root := tp.Tracer("test").Start(context.Background(), "runtime.v1.RuntimeService/RunPodSandbox")
	for _, err := range []error{nil, errors.New("no such network")} {
		_, end := s.startStep(ctx, "RunPodSandbox", "setting up network")
		end(err)
	}
	root.End()
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("got %d spans, want 3", len(spans))
	}
	for i, want := range []codes.Code{codes.Unset, codes.Error} {
		sp := spans[i]
		if sp.Name() != "RunPodSandbox/setting up network" {
			t.Errorf("span %d named %q", i, sp.Name())
		}
		if sp.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("span %d is not a child of the call's span", i)
		}
		if sp.Status().Code != want {
			t.Errorf("span %d status %v, want %v", i, sp.Status().Code, want)
		}
	}
	if len(spans[1].Events()) != 1 || spans[1].Events()[0].Name != "exception" {
		t.Errorf("the failed step's error was not recorded: %v", spans[1].Events())
	}
}

func TestNilTracerIsNoop(t *testing.T) {
	s := NewRuntimeServer(RuntimeInfo{}, Deps{}, nil)
	ctx, end := s.startStep(context.Background(), "CreateContainer", "writing bundle")
	defer end(nil)
	if ctx == nil {
		t.Fatal("no context")
	}
	if _, span := s.Tracer.Start(ctx, "x"); span.IsRecording() {
		t.Error("the default tracer records spans")
	}
}
