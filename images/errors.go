package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/docker/distribution/registry/api/errcode"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/signature"
	"go.podman.io/storage"
)

var (
	// ErrNotFound means the image is neither in the local store (for
	// lookups and removal) nor in the registry (for pulls).
	ErrNotFound = errors.New("image not found")
	// ErrInvalidReference means the image reference is malformed, empty,
	// names an unknown transport or is an ambiguous short name.
	ErrInvalidReference = errors.New("invalid image reference")
	// ErrInUse means the image backs at least one storage container; the
	// error text names the container.
	ErrInUse = errors.New("image is in use by a container")
	// ErrPinned means the image (or the tag being removed) is pinned by the
	// configuration or is the pause image and must not be removed.
	ErrPinned = errors.New("image is pinned")
	// ErrUnauthorized means the registry refused the request because it
	// lacked valid credentials (HTTP 401).
	ErrUnauthorized = errors.New("registry authentication failed")
	// ErrDenied means the request was authenticated but not permitted: the
	// registry answered "denied" (HTTP 403) or the signature policy
	// rejected the image.
	ErrDenied = errors.New("access to image denied")
	// ErrUnavailable means the registry could not be reached, answered
	// with a server-side failure, throttled the client, or the pull made
	// no progress within the configured pull progress timeout.
	ErrUnavailable = errors.New("registry unavailable")
)

// classifyPullError wraps err with the sentinel that describes it, naming
// the registry host where that helps the caller. remote says the source is
// a registry: then a connection cut in the middle of a blob (an unexpected
// EOF that the library's reconnect attempt could not repair) also means
// the registry is unavailable. Context errors and errors that already
// carry a sentinel are returned unchanged.
func classifyPullError(err error, registry string, remote bool) error {
	if err == nil || hasSentinel(err) || isContextError(err) {
		return err
	}
	sentinel := sentinelFor(err)
	if sentinel == nil && remote && errors.Is(err, io.ErrUnexpectedEOF) {
		sentinel = ErrUnavailable
	}
	if sentinel != nil {
		return fmt.Errorf("%w: registry %s: %w", sentinel, registry, err)
	}
	return err
}

// hasSentinel reports whether err already wraps one of the package sentinels.
func hasSentinel(err error) bool {
	for _, s := range []error{ErrNotFound, ErrInvalidReference, ErrInUse, ErrPinned, ErrUnauthorized, ErrDenied, ErrUnavailable, ErrInvalidAuth} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// isContextError reports whether err is a cancellation or deadline error.
func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// sentinelFor maps errors produced by go.podman.io/image and storage to a
// sentinel, or returns nil when none applies.
func sentinelFor(err error) error {
	if s := registryCodeSentinel(err); s != nil {
		return s
	}
	var unauth docker.ErrUnauthorizedForCredentials
	var status docker.UnexpectedHTTPStatusError
	var policy signature.PolicyRequirementError
	switch {
	case errors.As(err, &unauth):
		return ErrUnauthorized
	case errors.As(err, &status):
		return httpStatusSentinel(status.StatusCode)
	case errors.As(err, &policy):
		return ErrDenied
	case errors.Is(err, docker.ErrTooManyRequests), isNetworkError(err):
		return ErrUnavailable
	case errors.Is(err, storage.ErrImageUnknown):
		return ErrNotFound
	}
	return nil
}

// registryCodeSentinel maps a distribution error code in err's chain.
func registryCodeSentinel(err error) error {
	var coder errcode.ErrorCoder
	if !errors.As(err, &coder) {
		return nil
	}
	switch coder.ErrorCode().Descriptor().Value {
	case "UNAUTHORIZED":
		return ErrUnauthorized
	case "DENIED":
		return ErrDenied
	case "MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN":
		return ErrNotFound
	case "TOOMANYREQUESTS", "UNAVAILABLE":
		return ErrUnavailable
	}
	return nil
}

// httpStatusSentinel maps an unexpected registry HTTP status.
func httpStatusSentinel(code int) error {
	switch {
	case code == 401:
		return ErrUnauthorized
	case code == 403:
		return ErrDenied
	case code == 404:
		return ErrNotFound
	case code == 429, code >= 500:
		return ErrUnavailable
	}
	return nil
}

// isNetworkError reports whether err comes from dialling or talking to a
// registry (refused connection, DNS failure, reset, timeout).
func isNetworkError(err error) bool {
	var opErr *net.OpError
	var dnsErr *net.DNSError
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}
