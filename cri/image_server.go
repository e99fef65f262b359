package cri

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/images"
)

// streamImagesBatch is how many images one StreamImages response carries.
const streamImagesBatch = 256

// ImageServer is the CRI ImageService over an images.Service.
type ImageServer struct {
	runtimeapi.UnimplementedImageServiceServer
	svc      *images.Service
	log      *slog.Logger
	observer PullObserver
}

// PullObserver hears the outcome of every PullImage call, for metrics.
type PullObserver interface {
	ObservePull(code string)
}

// SetPullObserver makes every PullImage outcome reported to o; call it
// before serving.
func (s *ImageServer) SetPullObserver(o PullObserver) { s.observer = o }

// NewImageServer returns the ImageService backed by svc.
func NewImageServer(svc *images.Service, log *slog.Logger) *ImageServer {
	return &ImageServer{svc: svc, log: log}
}

// ListImages lists stored images, or the one the filter names.
func (s *ImageServer) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	filter := req.GetFilter().GetImage().GetImage()
	imgs, err := s.svc.List(ctx, filter)
	if err != nil {
		return nil, imageStatus("listing images", filter, err)
	}
	return &runtimeapi.ListImagesResponse{Images: toCRIImages(imgs)}, nil
}

// StreamImages sends the same images as ListImages in batches.
func (s *ImageServer) StreamImages(req *runtimeapi.StreamImagesRequest, stream runtimeapi.ImageService_StreamImagesServer) error {
	filter := req.GetFilter().GetImage().GetImage()
	imgs, err := s.svc.List(stream.Context(), filter)
	if err != nil {
		return imageStatus("listing images", filter, err)
	}
	all := toCRIImages(imgs)
	for start := 0; start < len(all); start += streamImagesBatch {
		end := min(start+streamImagesBatch, len(all))
		if err := stream.Send(&runtimeapi.StreamImagesResponse{Images: all[start:end]}); err != nil {
			return err
		}
	}
	return nil
}

// ImageStatus returns the image, or a response without one when the image
// is not present. Verbose adds the OCI image config under info["info"].
func (s *ImageServer) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := req.GetImage().GetImage()
	img, err := s.svc.Status(ctx, ref)
	if errors.Is(err, images.ErrNotFound) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, imageStatus("reading image status", ref, err)
	}
	resp := &runtimeapi.ImageStatusResponse{Image: toCRIImage(*img)}
	if req.GetVerbose() {
		info, err := json.Marshal(map[string]any{"imageSpec": img.Config, "pinned": img.Pinned})
		if err != nil {
			return nil, imageStatus("encoding image status", ref, err)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// PullImage pulls the image and returns its ID as image_ref.
func (s *ImageServer) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	id, err := s.svc.Pull(ctx, ref, toAuth(req.GetAuth()))
	if err != nil {
		err = imageStatus("pulling image", ref, err)
	}
	if s.observer != nil {
		s.observer.ObservePull(status.Code(err).String())
	}
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: id}, nil
}

// RemoveImage removes the image; an image that is already gone is not an
// error.
func (s *ImageServer) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	err := s.svc.Remove(ctx, ref)
	if err != nil && !errors.Is(err, images.ErrNotFound) {
		return nil, imageStatus("removing image", ref, err)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the image store's usage and, separately, the usage
// of container writable layers, both on the storage root.
func (s *ImageServer) ImageFsInfo(ctx context.Context, _ *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	info, err := s.svc.FsInfo(ctx)
	if err != nil {
		return nil, imageStatus("measuring image file system", "", err)
	}
	ts := info.Timestamp.UnixNano()
	return &runtimeapi.ImageFsInfoResponse{
		ImageFilesystems:     []*runtimeapi.FilesystemUsage{toFsUsage(ts, info.Images)},
		ContainerFilesystems: []*runtimeapi.FilesystemUsage{toFsUsage(ts, info.Containers)},
	}, nil
}
