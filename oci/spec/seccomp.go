package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Deprecated CRI seccomp_profile_path values.
const (
	profileRuntimeDefault = "runtime/default"
	profileDockerDefault  = "docker/default"
	profileUnconfined     = "unconfined"
	profileLocalhost      = "localhost/"
)

// Seccomp returns the seccomp filter for a security profile, or nil for no
// filter. RuntimeDefault is moby's default profile conditioned on the
// capabilities already in s.Process; Localhost reads the JSON profile at
// an absolute path. field names the request field in errors. Without
// kernel support RuntimeDefault is dropped and Localhost is an error.
func Seccomp(profile *runtimeapi.SecurityProfile, deprecatedPath, field string, s *specs.Spec, h Host) (*specs.LinuxSeccomp, error) {
	kind, ref, err := seccompKind(profile, deprecatedPath, field)
	if err != nil {
		return nil, err
	}
	switch kind {
	case runtimeapi.SecurityProfile_Unconfined:
		return nil, nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		if !h.SeccompAvailable {
			return nil, nil
		}
		sc, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			return nil, fmt.Errorf("%s: building default seccomp profile: %w", field, err)
		}
		return sc, nil
	}
	if !h.SeccompAvailable {
		return nil, fmt.Errorf("%s: seccomp profile %q requested but the kernel lacks seccomp", field, ref)
	}
	return localhostSeccomp(ref, field, s)
}

// seccompKind normalises the profile and the deprecated path form. An
// absent profile means Unconfined, as the CRI defines.
func seccompKind(p *runtimeapi.SecurityProfile, deprecated, field string) (runtimeapi.SecurityProfile_ProfileType, string, error) {
	if p != nil {
		return p.GetProfileType(), p.GetLocalhostRef(), nil
	}
	switch {
	case deprecated == "" || deprecated == profileUnconfined:
		return runtimeapi.SecurityProfile_Unconfined, "", nil
	case deprecated == profileRuntimeDefault || deprecated == profileDockerDefault:
		return runtimeapi.SecurityProfile_RuntimeDefault, "", nil
	case strings.HasPrefix(deprecated, profileLocalhost):
		return runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(deprecated, profileLocalhost), nil
	}
	return 0, "", fmt.Errorf("%s: unknown seccomp profile %q", field, deprecated)
}

// localhostSeccomp loads a JSON profile from the node.
func localhostSeccomp(ref, field string, s *specs.Spec) (*specs.LinuxSeccomp, error) {
	if !filepath.IsAbs(ref) {
		return nil, fmt.Errorf("%s.localhost_ref %q: not an absolute path", field, ref)
	}
	body, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("%s.localhost_ref: reading profile: %w", field, err)
	}
	sc, err := seccomp.LoadProfile(string(body), s)
	if err != nil {
		return nil, fmt.Errorf("%s.localhost_ref %q: loading profile: %w", field, ref, err)
	}
	if sc == nil {
		return nil, fmt.Errorf("%s.localhost_ref %q: profile has no default action and no syscalls", field, ref)
	}
	return sc, nil
}

// AppArmorProfile returns the profile name for the spec: only a Localhost
// profile on a kernel with AppArmor enabled is applied; everything else,
// including any request on a kernel without AppArmor, yields "".
func AppArmorProfile(p *runtimeapi.SecurityProfile, deprecated string, h Host) string {
	if !h.AppArmorEnabled {
		return ""
	}
	if p != nil {
		if p.GetProfileType() == runtimeapi.SecurityProfile_Localhost {
			return p.GetLocalhostRef()
		}
		return ""
	}
	if strings.HasPrefix(deprecated, profileLocalhost) {
		return strings.TrimPrefix(deprecated, profileLocalhost)
	}
	return ""
}
