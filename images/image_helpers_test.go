package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// testImage is a small image built by the tests: one layer per entry in
// layers, each layer holding one file with the given content.
type testImage struct {
	layers []string
	user   string
}

// builtImage is a test image written as an OCI layout.
type builtImage struct {
	dir        string   // OCI layout directory, image tagged "latest"
	configID   string   // hex config digest == expected storage image ID
	layerBlobs []string // compressed layer digests
}

// build writes the image as an OCI layout under t.TempDir().
func (ti testImage) build(t *testing.T) builtImage {
	t.Helper()
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755))
	out := builtImage{dir: dir}
	var layerDescs []imgspecv1.Descriptor
	var diffIDs []digest.Digest
	for i, content := range ti.layers {
		raw := tarWithFile(t, filepath.Join("data", string(rune('a'+i))+".txt"), content)
		gz := gzipBytes(t, raw)
		desc := writeBlob(t, dir, imgspecv1.MediaTypeImageLayerGzip, gz)
		layerDescs = append(layerDescs, desc)
		diffIDs = append(diffIDs, digest.FromBytes(raw))
		out.layerBlobs = append(out.layerBlobs, desc.Digest.String())
	}
	config := imgspecv1.Image{
		Platform: imgspecv1.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   imgspecv1.ImageConfig{User: ti.user, Cmd: []string{"/bin/true"}, Env: []string{"PATH=/bin"}},
		RootFS:   imgspecv1.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	configDesc := writeBlob(t, dir, imgspecv1.MediaTypeImageConfig, mustJSON(t, config))
	out.configID = configDesc.Digest.Encoded()
	manifest := imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: configDesc, Layers: layerDescs}
	manifestDesc := writeBlob(t, dir, imgspecv1.MediaTypeImageManifest, mustJSON(t, manifest))
	manifestDesc.Annotations = map[string]string{imgspecv1.AnnotationRefName: "latest"}
	index := imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex,
		Manifests: []imgspecv1.Descriptor{manifestDesc}}
	must(t, os.WriteFile(filepath.Join(dir, "index.json"), mustJSON(t, index), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, imgspecv1.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644))
	return out
}

// push copies the image to docker://name (plain HTTP registry) and returns
// the manifest digest.
func (b builtImage) push(t *testing.T, name string, auth *types.DockerAuthConfig) string {
	t.Helper()
	named, err := reference.ParseNormalizedNamed(name)
	must(t, err)
	dest, err := docker.NewReference(named)
	must(t, err)
	return b.copyTo(t, dest, &types.SystemContext{DockerInsecureSkipTLSVerify: types.OptionalBoolTrue, DockerAuthConfig: auth})
}

// copyTo copies the image to any destination and returns the manifest digest.
func (b builtImage) copyTo(t *testing.T, dest types.ImageReference, sys *types.SystemContext) string {
	t.Helper()
	src, err := layout.NewReference(b.dir, "latest")
	must(t, err)
	policy, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	must(t, err)
	defer func() { _ = policy.Destroy() }()
	manifest, err := copy.Image(context.Background(), policy, dest, src, &copy.Options{DestinationCtx: sys})
	if err != nil {
		t.Fatalf("pushing test image to %s: %v", dest.StringWithinTransport(), err)
	}
	return digest.FromBytes(manifest).String()
}

// tarWithFile returns an uncompressed tar holding one file.
func tarWithFile(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must(t, tw.WriteHeader(&tar.Header{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755}))
	must(t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))}))
	_, err := tw.Write([]byte(content))
	must(t, err)
	must(t, tw.Close())
	return buf.Bytes()
}

// gzipBytes compresses data.
func gzipBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(data)
	must(t, err)
	must(t, zw.Close())
	return buf.Bytes()
}

// writeBlob stores data in the layout and returns its descriptor.
func writeBlob(t *testing.T, dir, mediaType string, data []byte) imgspecv1.Descriptor {
	t.Helper()
	d := digest.FromBytes(data)
	must(t, os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), data, 0o644))
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	must(t, err)
	return data
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
