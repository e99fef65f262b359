package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxUserDBBytes bounds how much of an image's /etc/passwd or /etc/group is read.
const maxUserDBBytes = 10 << 20

// userRequest is the part of a security context that picks the identity.
type userRequest struct {
	RunAsUser          *runtimeapi.Int64Value
	RunAsUsername      string
	RunAsGroup         *runtimeapi.Int64Value
	SupplementalGroups []int64
	Policy             runtimeapi.SupplementalGroupsPolicy
}

// ResolveUser computes the effective user of a container: the CRI
// run_as_user or run_as_username, else the image user ("user[:group]"),
// looked up in the rootfs's /etc/passwd and /etc/group without following
// symlinks out of the rootfs. run_as_group overrides the primary group.
// With the Merge policy the user's /etc/group memberships are added to the
// supplemental groups; with Strict only the requested ones are.
func ResolveUser(rootfs string, sc *runtimeapi.LinuxContainerSecurityContext, imageUser string) (EffectiveUser, error) {
	return resolveUser(rootfs, userRequest{
		RunAsUser:          sc.GetRunAsUser(),
		RunAsUsername:      sc.GetRunAsUsername(),
		RunAsGroup:         sc.GetRunAsGroup(),
		SupplementalGroups: sc.GetSupplementalGroups(),
		Policy:             sc.GetSupplementalGroupsPolicy(),
	}, imageUser)
}

// resolveUser implements ResolveUser for container and sandbox contexts.
func resolveUser(rootfs string, req userRequest, imageUser string) (EffectiveUser, error) {
	userSpec, err := userSpecOf(req, imageUser)
	if err != nil {
		return EffectiveUser{}, err
	}
	passwd, err := readRootfsFile(rootfs, "/etc/passwd")
	if err != nil {
		return EffectiveUser{}, err
	}
	group, err := readRootfsFile(rootfs, "/etc/group")
	if err != nil {
		return EffectiveUser{}, err
	}
	execUser, err := user.GetExecUser(userSpec, nil, passwd, group)
	if err != nil {
		return EffectiveUser{}, fmt.Errorf("resolving user %q in image: %w", userSpec, err)
	}
	if req.RunAsGroup != nil {
		if execUser.Gid, err = checkID(req.RunAsGroup.GetValue(), "run_as_group"); err != nil {
			return EffectiveUser{}, err
		}
	}
	return effectiveUser(execUser, req)
}

// userSpecOf picks the "user[:group]" string to resolve.
func userSpecOf(req userRequest, imageUser string) (string, error) {
	switch {
	case req.RunAsUser != nil:
		uid, err := checkID(req.RunAsUser.GetValue(), "run_as_user")
		return strconv.Itoa(uid), err
	case req.RunAsUsername != "":
		return req.RunAsUsername, nil
	case req.RunAsGroup != nil:
		return "", errors.New("run_as_group: set without run_as_user or run_as_username")
	}
	return imageUser, nil
}

// checkID validates a CRI uid or gid.
func checkID(v int64, field string) (int, error) {
	if v < 0 || v > math.MaxInt32 {
		return 0, fmt.Errorf("%s %d: out of range", field, v)
	}
	return int(v), nil
}

// effectiveUser assembles the groups per the supplemental groups policy.
func effectiveUser(u *user.ExecUser, req userRequest) (EffectiveUser, error) {
	out := EffectiveUser{UID: uint32(u.Uid), GID: uint32(u.Gid)}
	seen := map[uint32]bool{}
	add := func(g uint32) {
		if !seen[g] {
			seen[g] = true
			out.AdditionalGIDs = append(out.AdditionalGIDs, g)
		}
	}
	add(out.GID)
	if req.Policy != runtimeapi.SupplementalGroupsPolicy_Strict {
		for _, g := range u.Sgids {
			add(uint32(g))
		}
	}
	for _, g := range req.SupplementalGroups {
		gid, err := checkID(g, "supplemental_groups")
		if err != nil {
			return EffectiveUser{}, err
		}
		add(uint32(gid))
	}
	return out, nil
}

// readRootfsFile reads a regular file inside rootfs, resolving symlinks as
// if rootfs were "/". A missing file yields a nil reader.
func readRootfsFile(rootfs, name string) (io.Reader, error) {
	handle, err := pathrs.OpenInRoot(rootfs, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s in rootfs: %w", name, err)
	}
	defer handle.Close()
	f, err := pathrs.Reopen(handle, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("opening %s in rootfs: %w", name, err)
	}
	defer f.Close()
	return readRegular(f, name)
}

// readRegular reads a bounded regular file.
func readRegular(f *os.File, name string) (io.Reader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s in rootfs: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in rootfs: not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxUserDBBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s in rootfs: %w", name, err)
	}
	if len(data) > maxUserDBBytes {
		return nil, fmt.Errorf("%s in rootfs: larger than %d bytes", name, maxUserDBBytes)
	}
	return bytes.NewReader(data), nil
}
