package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/arbor-cri/arbor/e2e/harness"
)

// shared is the registry with the test images and the CNI network.
var shared harness.LazyEnv

// sharedEnv sets the shared environment up the first time a test needs
// it; TestMain tears it down.
func sharedEnv(t testing.TB) *harness.Env { return shared.Get(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Close()
	if code == 0 {
		if leaks := harness.HostLeaks(); leaks != "" {
			fmt.Fprintf(os.Stderr, "e2e left things behind on the host:\n%s", leaks)
			code = 1
		}
	}
	os.Exit(code)
}
