// Package tracing sets up OpenTelemetry tracing for the daemon: a tracer
// provider that exports spans over OTLP gRPC (plaintext) to a collector,
// sampling a configured share of root calls per million and following a
// caller's sampling decision. Disabled, it hands out a no-op tracer that
// costs nothing and touches no global state.
package tracing

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/arbor-cri/arbor/config"
	"github.com/arbor-cri/arbor/version"
)

// ServiceName is the service.name resource attribute of every span.
const ServiceName = "arbor"

// instrumentation names the tracer Setup returns.
const instrumentation = "github.com/arbor-cri/arbor"

// perMillion is the denominator of config.Tracing.SamplingRatePerMillion.
const perMillion = 1_000_000

// Setup returns the tracer for the daemon's own spans and a shutdown that
// flushes buffered spans and closes the exporter; call shutdown once, with
// a bounded context, after the last span ended.
//
// Enabled, Setup also installs its provider and the W3C trace-context and
// baggage propagators as the process's global ones, which the otelgrpc
// stats handler uses. The exporter connects lazily: a collector that is
// down delays nothing at start-up; spans for it are dropped. Disabled,
// the tracer is a no-op and shutdown does nothing.
func Setup(ctx context.Context, cfg config.Tracing, log *slog.Logger) (trace.Tracer, func(context.Context) error, error) {
	if !cfg.Enable {
		return Noop(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(cfg.Endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		return nil, nil, fmt.Errorf("creating the OTLP exporter: %w", err)
	}
	tp := NewProvider(exp, cfg.SamplingRatePerMillion)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Debug("Tracing error", "error", err)
	}))
	log.Info("Tracing enabled", "endpoint", cfg.Endpoint, "sampling_rate_per_million", cfg.SamplingRatePerMillion)
	shutdown := func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("flushing traces: %w", err)
		}
		return nil
	}
	return tp.Tracer(instrumentation), shutdown, nil
}

// NewProvider returns a tracer provider that batches spans to exp and
// samples ratePerMillion of every million root traces (0 samples none,
// 1000000 all); a span with a parent is sampled as its parent was. The
// spans carry service.name=arbor and the daemon's service.version.
func NewProvider(exp sdktrace.SpanExporter, ratePerMillion int) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(Sampler(ratePerMillion)),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL,
			semconv.ServiceName(ServiceName),
			semconv.ServiceVersion(version.Get().Version),
		)),
	)
}

// Sampler is the parent-based sampler for a rate per million root traces.
func Sampler(ratePerMillion int) sdktrace.Sampler {
	return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(float64(ratePerMillion) / perMillion))
}

// Noop returns a tracer whose spans record nothing.
func Noop() trace.Tracer { return noop.NewTracerProvider().Tracer(instrumentation) }
