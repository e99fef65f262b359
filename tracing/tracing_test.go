package tracing

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/arbor-cri/arbor/config"
)

const roots = 200

func TestSampling(t *testing.T) {
	sampledParent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	unsampledParent := sampledParent.WithTraceFlags(0)
	cases := []struct {
		name   string
		rate   int
		parent trace.SpanContext
		want   int
	}{
		{"rate 0 samples no root", 0, trace.SpanContext{}, 0},
		{"rate 1000000 samples every root", perMillion, trace.SpanContext{}, roots},
		{"rate 0 follows a sampled parent", 0, sampledParent, roots},
		{"rate 1000000 follows an unsampled parent", perMillion, unsampledParent, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := NewProvider(exp, tc.rate)
			defer tp.Shutdown(context.Background())
			ctx := trace.ContextWithRemoteSpanContext(context.Background(), tc.parent)
			for range roots {
				_, span := tp.Tracer("test").Start(ctx, "RunPodSandbox/step")
				span.End()
			}
			if err := tp.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := len(exp.GetSpans()); got != tc.want {
				t.Fatalf("exported %d spans of %d, want %d", got, roots, tc.want)
			}
		})
	}
}

func TestResourceNamesTheService(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := NewProvider(exp, perMillion)
	defer tp.Shutdown(context.Background())
	_, span := tp.Tracer("test").Start(context.Background(), "x")
	span.End()
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("got %d spans", len(spans))
	}
	attrs := map[attribute.Key]string{}
	for _, kv := range spans[0].Resource.Attributes() {
		attrs[kv.Key] = kv.Value.Emit()
	}
	if attrs["service.name"] != ServiceName {
		t.Errorf("service.name = %q, want %q", attrs["service.name"], ServiceName)
	}
	if _, ok := attrs["service.version"]; !ok {
		t.Errorf("no service.version in %v", attrs)
	}
}

func TestDisabledIsNoop(t *testing.T) {
	before := otel.GetTracerProvider()
	tracer, shutdown, err := Setup(context.Background(), config.Tracing{Endpoint: "127.0.0.1:4317"}, discard())
	if err != nil {
		t.Fatal(err)
	}
	_, span := tracer.Start(context.Background(), "x")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("a disabled tracer made a real span")
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if otel.GetTracerProvider() != before {
		t.Error("disabled Setup replaced the global tracer provider")
	}
}

// TestCollectorDownDoesNotFailSetup points the exporter at a closed port:
// Setup must succeed (the connection is lazy) and spans still record.
func TestCollectorDownDoesNotFailSetup(t *testing.T) {
	before := otel.GetTracerProvider()
	defer otel.SetTracerProvider(before)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	tracer, shutdown, err := Setup(context.Background(),
		config.Tracing{Enable: true, Endpoint: addr, SamplingRatePerMillion: perMillion}, discard())
	if err != nil {
		t.Fatalf("setup with the collector down: %v", err)
	}
	_, span := tracer.Start(context.Background(), "x")
	if !span.IsRecording() {
		t.Error("an enabled tracer at rate 1000000 made a span that does not record")
	}
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := shutdown(ctx); err == nil {
		t.Log("shutdown flushed without a collector (span dropped)")
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
