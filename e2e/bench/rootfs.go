package bench

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	digest "github.com/opencontainers/go-digest"
	imgspec "github.com/opencontainers/image-spec/specs-go/v1"
)

// hostBusybox is the dynamically linked busybox the host rootfs copies.
const hostBusybox = "/usr/bin/busybox"

var lddPath = regexp.MustCompile(`(/\S+) \(0x`)

// hostBusyboxRootfs copies the host's busybox and the libraries ldd lists
// into dir, with sh and sleep linked to it.
func hostBusyboxRootfs(ctx context.Context, dir string) error {
	out, err := exec.CommandContext(ctx, "ldd", hostBusybox).Output()
	if err != nil {
		return fmt.Errorf("listing libraries of %s: %w", hostBusybox, err)
	}
	files := []string{hostBusybox}
	for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
		files = append(files, m[1])
	}
	for _, f := range files {
		if err := copyHostFile(f, filepath.Join(dir, f)); err != nil {
			return err
		}
	}
	for _, sub := range []string{"bin", "proc", "dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("creating rootfs folder: %w", err)
		}
	}
	for _, applet := range []string{"sh", "sleep"} {
		if err := os.Link(filepath.Join(dir, hostBusybox), filepath.Join(dir, "bin", applet)); err != nil {
			return fmt.Errorf("linking %s: %w", applet, err)
		}
	}
	return nil
}

func copyHostFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return nil
}

// imageRootfs copies image into an OCI layout with skopeo (TLS checks off:
// test registries speak plain HTTP) and unpacks its layers into dir.
func imageRootfs(ctx context.Context, image, layout, dir string) error {
	out, err := exec.CommandContext(ctx, "skopeo", "--insecure-policy", "copy", "--src-tls-verify=false",
		image, "oci:"+layout+":floor").CombinedOutput()
	if err != nil {
		return fmt.Errorf("skopeo copy %s: %w: %s", image, err, bytes.TrimSpace(out))
	}
	layers, err := layoutLayers(layout)
	if err != nil {
		return err
	}
	for _, l := range layers {
		if err := unpackLayer(blobPath(layout, l.Digest), dir); err != nil {
			return fmt.Errorf("unpacking layer %s: %w", l.Digest, err)
		}
	}
	return nil
}

func blobPath(layout string, d digest.Digest) string {
	return filepath.Join(layout, "blobs", d.Algorithm().String(), d.Encoded())
}

// layoutLayers reads the layer list of the only manifest in layout.
func layoutLayers(layout string) ([]imgspec.Descriptor, error) {
	var index imgspec.Index
	if err := readJSON(filepath.Join(layout, "index.json"), &index); err != nil {
		return nil, err
	}
	if len(index.Manifests) != 1 {
		return nil, fmt.Errorf("reading layout: %d manifests, want 1", len(index.Manifests))
	}
	var m imgspec.Manifest
	if err := readJSON(blobPath(layout, index.Manifests[0].Digest), &m); err != nil {
		return nil, err
	}
	return m.Layers, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading layout: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding %s: %w", filepath.Base(path), err)
	}
	return nil
}

// unpackLayer applies one (gzip or plain) tar layer to dir, whiteouts
// included.
func unpackLayer(blob, dir string) error {
	f, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := applyEntry(tr, h, dir); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
}

// applyEntry writes one tar entry under dir.
func applyEntry(r io.Reader, h *tar.Header, dir string) error {
	name := filepath.Clean("/" + h.Name)
	// Resolve the parent inside dir, so a symlink in an earlier entry
	// cannot make a later one land outside the rootfs.
	parent, err := securejoin.SecureJoin(dir, filepath.Dir(name))
	if err != nil {
		return err
	}
	base := filepath.Base(name)
	target := filepath.Join(parent, base)
	switch {
	case base == ".wh..wh..opq":
		return clearDir(filepath.Dir(target))
	case strings.HasPrefix(base, ".wh."):
		return os.RemoveAll(filepath.Join(filepath.Dir(target), strings.TrimPrefix(base, ".wh.")))
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if fi, err := os.Lstat(target); err == nil && !fi.IsDir() {
			_ = os.RemoveAll(target)
		}
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
	case tar.TypeReg:
		if err := writeFile(target, r); err != nil {
			return err
		}
	case tar.TypeSymlink:
		_ = os.RemoveAll(target)
		return os.Symlink(h.Linkname, target)
	case tar.TypeLink:
		src, err := securejoin.SecureJoin(dir, h.Linkname)
		if err != nil {
			return err
		}
		_ = os.RemoveAll(target)
		return os.Link(src, target)
	default:
		return nil // devices and fifos: not needed to run sleep
	}
	if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
		return err
	}
	return os.Chmod(target, tarMode(h))
}

func tarMode(h *tar.Header) os.FileMode {
	m := os.FileMode(h.Mode).Perm()
	if h.Mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if h.Mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if h.Mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}

func writeFile(target string, r io.Reader) error {
	_ = os.RemoveAll(target)
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func clearDir(dir string) error {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
