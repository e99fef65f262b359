package e2e

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/arbor-cri/arbor/e2e/harness"
)

var (
	envOnce sync.Once
	env     *harness.Env
	envErr  error
)

// sharedEnv starts the registry with the test images and the CNI network
// the first time a test needs them; TestMain tears them down.
func sharedEnv(t testing.TB) *harness.Env {
	t.Helper()
	envOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		env, envErr = harness.SetupEnv(ctx)
	})
	if envErr != nil {
		t.Fatalf("test environment: %v", envErr)
	}
	return env
}

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		env.Close()
	}
	if code == 0 {
		if leaks := harness.HostLeaks(); leaks != "" {
			fmt.Fprintf(os.Stderr, "e2e left things behind on the host:\n%s", leaks)
			code = 1
		}
	}
	os.Exit(code)
}
