package images

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
)

// Pull copies ref into the store and returns the image ID (the hex
// config digest c/storage uses, not a repository digest).
//
// ref is a registry name ("busybox", "quay.io/a/b:1", "x@sha256:..."),
// optionally prefixed "docker://", or an "oci-archive:PATH[:NAME]" or
// "docker-archive:PATH[:NAME]" reference. Registry names honour
// registries.conf (aliases, unqualified-search registries, short-name
// mode, mirrors, location rewrites, insecure registries), policy.json,
// auth (from the request, else the auth file) and the pull progress
// timeout. Concurrent pulls of the same resolved reference with the same
// credentials share one download; a caller whose ctx ends stops waiting
// without affecting the others, and the download is cancelled only when
// every caller has gone. A failed or cancelled pull leaves no layers.
func (s *Service) Pull(ctx context.Context, ref string, auth *Auth) (string, error) {
	st := s.settings.Load()
	sys := st.systemContext()
	if err := auth.apply(sys); err != nil {
		return "", err
	}
	targets, err := st.pullTargets(sys, ref)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, t := range targets {
		joined := func(waiters int) {
			s.log.Debug("Joined a pull in progress", "image", t.key(), "waiting", waiters)
		}
		id, err := s.flights.do(ctx, t.key()+"|"+auth.fingerprint(), joined, func(fctx context.Context) (string, error) {
			return s.pullTarget(fctx, st, sys, t)
		})
		if err == nil {
			return id, nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("pulling %s: %w", ref, err)
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("pulling %s: %w", ref, errors.Join(errs...))
}

// DownloadObserver hears of every copy of an image from its source, once
// however many pulls share it and whether or not it succeeds: the bytes it
// read and the layers it fetched or found already stored.
type DownloadObserver interface {
	ObserveDownload(bytes uint64, layersFetched, layersReused int)
}

// SetDownloadObserver makes every download reported to o; call it before
// the first pull.
func (s *Service) SetDownloadObserver(o DownloadObserver) { s.downloads = o }

// pullTarget copies one source into the store. It runs on the shared
// flight's context and registers with the janitor, which removes the
// layers of a pull that fails.
func (s *Service) pullTarget(ctx context.Context, st *settings, sys *types.SystemContext, t pullTarget) (id string, err error) {
	started := time.Now()
	s.janitor.begin()
	pulled := false // stays false through a panic, so that the janitor cleans up
	defer func() { s.janitor.end(started, !pulled || err != nil) }()
	policyCtx, err := st.policyContext()
	if err != nil {
		return "", err
	}
	defer func() { _ = policyCtx.Destroy() }()
	dest, err := istorage.Transport.NewStoreReference(s.store, t.name, "")
	if err != nil {
		return "", fmt.Errorf("creating storage reference for %s: %w", t.name, err)
	}
	s.log.Debug("Pulling image", "image", t.key())
	res, err := s.copyImage(ctx, st, sys, policyCtx, dest, t)
	if s.downloads != nil {
		s.downloads.ObserveDownload(res.bytes, res.layersFetched, res.layersReused)
	}
	if err != nil {
		s.log.Info("Image pull failed", "image", t.key(), "seconds", time.Since(started).Seconds(),
			"bytes", res.bytes, "error", err)
		return "", err
	}
	s.log.Info("Pulled image", "image", t.key(), "image_id", res.id, "bytes", res.bytes,
		"layers_fetched", res.layersFetched, "layers_reused", res.layersReused,
		"seconds", time.Since(started).Seconds())
	pulled = true
	return res.id, nil
}

// pullResult is what one copy did and, if it succeeded, produced.
type pullResult struct {
	pullStats
	id string
}

// copyImage runs copy.Image under the progress watch and resolves the
// stored image ID. The statistics are set whether or not it fails.
func (s *Service) copyImage(ctx context.Context, st *settings, sys *types.SystemContext, policyCtx *signature.PolicyContext, dest types.ImageReference, t pullTarget) (pullResult, error) {
	watch := watchProgress(ctx, st.cfg.PullProgressTimeout, s.log)
	var resolved types.ImageReference
	_, copyErr := copy.Image(watch.ctx, policyCtx, dest, t.src, &copy.Options{
		SourceCtx:               sys,
		DestinationCtx:          sys,
		ProgressInterval:        watch.interval(),
		Progress:                watch.events,
		ReportResolvedReference: &resolved,
	})
	stats, stalled := watch.stop()
	res := pullResult{pullStats: stats}
	if stalled != nil {
		return res, fmt.Errorf("%w: registry %s: %w", ErrUnavailable, t.origin, stalled)
	}
	if copyErr != nil {
		return res, classifyPullError(copyErr, t.origin, t.fromRegistry())
	}
	if resolved == nil {
		return res, fmt.Errorf("resolving pulled image %s: storage reported no reference", t.key())
	}
	_, img, err := istorage.ResolveReference(resolved)
	if err != nil {
		return res, fmt.Errorf("resolving pulled image %s: %w", t.key(), err)
	}
	res.id = img.ID
	return res, nil
}

// policyContext loads the signature policy for one pull.
func (st *settings) policyContext() (*signature.PolicyContext, error) {
	policy, _, err := st.loadPolicy()
	if err != nil {
		return nil, err
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return nil, fmt.Errorf("creating signature policy context: %w", err)
	}
	return pc, nil
}
