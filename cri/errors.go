package cri

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/arbor-cri/arbor/fault"
	"github.com/arbor-cri/arbor/images"
	"github.com/arbor-cri/arbor/oci"
	"github.com/arbor-cri/arbor/store"
)

// codeOf lists each domain error with its status code; the first match
// wins. This is the one place where domain errors become status codes.
var codeOf = []struct {
	err  error
	code codes.Code
}{
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
	{fault.ErrInjected, codes.Unavailable},
	{store.ErrNotFound, codes.NotFound},
	{store.ErrAmbiguous, codes.InvalidArgument},
	{store.ErrNameInUse, codes.AlreadyExists},
	{oci.ErrUnknownHandler, codes.InvalidArgument},
	{oci.ErrNotFound, codes.NotFound},
	{oci.ErrNotRunning, codes.FailedPrecondition},
	{oci.ErrTimeout, codes.DeadlineExceeded},
	{images.ErrNotFound, codes.NotFound},
	{images.ErrInvalidReference, codes.InvalidArgument},
	{images.ErrInUse, codes.FailedPrecondition},
	{images.ErrPinned, codes.FailedPrecondition},
	{images.ErrUnauthorized, codes.Unauthenticated},
	{images.ErrDenied, codes.PermissionDenied},
	{images.ErrUnavailable, codes.Unavailable},
}

// toStatus turns a domain error into a gRPC status once, at the boundary.
// Handlers that already return a status keep it.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, c := range codeOf {
		if errors.Is(err, c.err) {
			return status.Error(c.code, err.Error())
		}
	}
	return status.Error(codes.Internal, err.Error())
}

// failedPrecondition is a FailedPrecondition status: the object is in the
// wrong state for the call.
func failedPrecondition(format string, args ...any) error {
	return status.Error(codes.FailedPrecondition, fmt.Sprintf(format, args...))
}
