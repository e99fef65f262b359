package cri

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// startStep starts the span of one step of a create call, named
// "<call>/<step>" under the call's span in ctx; end it with the step's
// error, which is recorded on the span.
func (s *RuntimeServer) startStep(ctx context.Context, call, step string) (context.Context, func(error)) {
	ctx, span := s.Tracer.Start(ctx, call+"/"+step)
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// orNoop is t, or a tracer that records nothing when t is nil.
func orNoop(t trace.Tracer) trace.Tracer {
	if t == nil {
		return noop.NewTracerProvider().Tracer("")
	}
	return t
}
