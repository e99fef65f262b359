package images

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// Defaults applied by Config.withDefaults to empty fields.
const (
	DefaultRoot                = "/var/lib/arbor/storage"
	DefaultRunRoot             = "/run/arbor/storage"
	DefaultDriver              = "overlay"
	DefaultRegistriesConf      = "/etc/containers/registries.conf"
	DefaultRegistriesConfDir   = "/etc/containers/registries.conf.d"
	DefaultSignaturePolicy     = "/etc/containers/policy.json"
	DefaultPauseImage          = "registry.k8s.io/pause:3.10"
	DefaultPullProgressTimeout = 2 * time.Minute
)

// Config configures a Service. Zero values take the defaults above.
type Config struct {
	// Root is the storage graph root holding layers and image metadata.
	Root string
	// RunRoot holds the store's transient state (locks, mount counts).
	RunRoot string
	// Driver is the storage graph driver. "overlay" falls back to "vfs"
	// when the kernel or backing file system cannot mount overlay.
	Driver string
	// DriverOptions are passed to the graph driver ("overlay.mountopt=...").
	DriverOptions []string
	// RegistriesConf is the containers-registries.conf(5) file.
	RegistriesConf string
	// RegistriesConfDir is the drop-in directory read after RegistriesConf.
	RegistriesConfDir string
	// SignaturePolicy is the containers-policy.json(5) file. When it does
	// not exist every image is accepted and the Service logs that.
	SignaturePolicy string
	// AuthFile is a containers-auth.json(5) file consulted when a pull
	// carries no credentials. Empty uses the library's default locations.
	AuthFile string
	// ShortNameMode overrides registries.conf: "enforcing", "permissive"
	// or "disabled". Empty leaves the choice to registries.conf.
	ShortNameMode string
	// PullProgressTimeout aborts a pull that transfers no data for this
	// long. Zero means DefaultPullProgressTimeout, negative disables it.
	PullProgressTimeout time.Duration
	// PinnedImages are image names or globs ("*" matches any run of
	// characters) that are never removed and are reported as pinned.
	PinnedImages []string
	// PauseImage is the sandbox image; it is always pinned.
	PauseImage string
}

// withDefaults returns a copy of c with empty fields set to defaults.
func (c Config) withDefaults() Config {
	setDefault(&c.Root, DefaultRoot)
	setDefault(&c.RunRoot, DefaultRunRoot)
	setDefault(&c.Driver, DefaultDriver)
	setDefault(&c.RegistriesConf, DefaultRegistriesConf)
	setDefault(&c.RegistriesConfDir, DefaultRegistriesConfDir)
	setDefault(&c.SignaturePolicy, DefaultSignaturePolicy)
	setDefault(&c.PauseImage, DefaultPauseImage)
	if c.PullProgressTimeout == 0 {
		c.PullProgressTimeout = DefaultPullProgressTimeout
	}
	return c
}

func setDefault(field *string, value string) {
	if *field == "" {
		*field = value
	}
}

// settings is the reloadable part of the configuration, swapped whole on
// Reload so that every pull sees one consistent snapshot.
type settings struct {
	cfg       Config
	shortMode *types.ShortNameMode
	pinned    *pinSet
	tmpDir    string
}

// newSettings validates cfg (already defaulted) into a settings snapshot.
func newSettings(cfg Config, tmpDir string) (*settings, error) {
	mode, err := parseShortNameMode(cfg.ShortNameMode)
	if err != nil {
		return nil, err
	}
	pinned, err := newPinSet(cfg.PinnedImages, cfg.PauseImage)
	if err != nil {
		return nil, err
	}
	return &settings{cfg: cfg, shortMode: mode, pinned: pinned, tmpDir: tmpDir}, nil
}

// parseShortNameMode maps the configuration string to the library type.
func parseShortNameMode(s string) (*types.ShortNameMode, error) {
	var mode types.ShortNameMode
	switch s {
	case "":
		return nil, nil
	case "enforcing":
		mode = types.ShortNameModeEnforcing
	case "permissive":
		mode = types.ShortNameModePermissive
	case "disabled":
		mode = types.ShortNameModeDisabled
	default:
		return nil, fmt.Errorf("parsing short name mode %q: want enforcing, permissive or disabled", s)
	}
	return &mode, nil
}

// systemContext builds the go.podman.io/image context for one operation.
// Each call returns a fresh value that the caller may modify.
func (st *settings) systemContext() *types.SystemContext {
	return &types.SystemContext{
		SystemRegistriesConfPath:    st.cfg.RegistriesConf,
		SystemRegistriesConfDirPath: st.cfg.RegistriesConfDir,
		AuthFilePath:                st.cfg.AuthFile,
		ShortNameMode:               st.shortMode,
		BigFilesTemporaryDir:        st.tmpDir,
		DockerRegistryUserAgent:     "arbor",
	}
}

// loadPolicy reads the signature policy, falling back to accepting every
// image when the policy file does not exist. It reports whether it fell back.
func (st *settings) loadPolicy() (*signature.Policy, bool, error) {
	policy, err := signature.NewPolicyFromFile(st.cfg.SignaturePolicy)
	if err == nil {
		return policy, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("loading signature policy %s: %w", st.cfg.SignaturePolicy, err)
	}
	accept := &signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}}
	return accept, true, nil
}

// logPolicyFallback logs once per Open or Reload when no policy file exists.
func (st *settings) logPolicyFallback(log *slog.Logger) error {
	_, fellBack, err := st.loadPolicy()
	if err != nil {
		return err
	}
	if fellBack {
		log.Warn("Signature policy file missing, accepting all images",
			"policy_path", st.cfg.SignaturePolicy)
	}
	return nil
}

// ensureDir creates dir (and parents) with mode 0700 if it is missing.
func ensureDir(dir string) error {
	if err := os.MkdirAll(filepath.Clean(dir), 0o700); err != nil {
		return fmt.Errorf("creating directory %s: %w", dir, err)
	}
	return nil
}
