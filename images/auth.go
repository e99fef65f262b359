package images

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"go.podman.io/image/v5/types"
)

// ErrInvalidAuth means the credentials in a pull request are malformed
// (for example an Auth field that is not base64 "user:password").
var ErrInvalidAuth = errors.New("malformed registry credentials")

// Auth carries the registry credentials of one pull request. A nil or
// empty Auth makes the pull use the configured auth file instead.
type Auth struct {
	// Username and Password are basic credentials.
	Username string
	Password string
	// Auth is base64("username:password"); used when Username is empty.
	Auth string
	// IdentityToken is an OAuth2 refresh token for the registry.
	IdentityToken string
	// RegistryToken is a bearer token sent to the registry as is.
	RegistryToken string
}

// empty reports whether a carries no credentials.
func (a *Auth) empty() bool {
	return a == nil || *a == Auth{}
}

// apply sets a's credentials on sys.
func (a *Auth) apply(sys *types.SystemContext) error {
	if a.empty() {
		return nil
	}
	user, pass := a.Username, a.Password
	if user == "" && a.Auth != "" {
		var err error
		if user, pass, err = decodeAuth(a.Auth); err != nil {
			return err
		}
	}
	if user != "" || pass != "" || a.IdentityToken != "" {
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: user, Password: pass, IdentityToken: a.IdentityToken}
	}
	sys.DockerBearerRegistryToken = a.RegistryToken
	return nil
}

// decodeAuth splits a base64 "user:password" field.
func decodeAuth(field string) (string, string, error) {
	raw, err := base64.StdEncoding.DecodeString(field)
	if err != nil {
		return "", "", fmt.Errorf("%w: decoding auth field: %w", ErrInvalidAuth, err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", fmt.Errorf("%w: auth field is not user:password", ErrInvalidAuth)
	}
	return user, pass, nil
}

// fingerprint identifies the credentials without revealing them, so that
// only callers with the same credentials share one pull.
func (a *Auth) fingerprint() string {
	if a.empty() {
		return "anonymous"
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{a.Username, a.Password, a.Auth, a.IdentityToken, a.RegistryToken}, "\x00")))
	return hex.EncodeToString(sum[:8])
}
