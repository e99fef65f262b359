package cri

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/arbor-cri/arbor/images"
)

// imageCodes maps each images sentinel to its gRPC code, first match wins.
var imageCodes = []struct {
	err  error
	code codes.Code
}{
	{images.ErrInvalidReference, codes.InvalidArgument},
	{images.ErrInvalidAuth, codes.InvalidArgument},
	{images.ErrNotFound, codes.NotFound},
	{images.ErrUnauthorized, codes.Unauthenticated},
	{images.ErrDenied, codes.PermissionDenied},
	{images.ErrUnavailable, codes.Unavailable},
	{images.ErrInUse, codes.FailedPrecondition},
	{images.ErrPinned, codes.FailedPrecondition},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// imageStatus turns an error from the images package into a gRPC status
// whose message names the operation and the image reference.
func imageStatus(op, ref string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Errorf(imageCode(err), "%s %q: %v", op, ref, err)
}

// imageCode returns the gRPC code for err, Internal when none matches.
func imageCode(err error) codes.Code {
	for _, m := range imageCodes {
		if errors.Is(err, m.err) {
			return m.code
		}
	}
	return codes.Internal
}
