package sandbox

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// joinNamespace moves the calling (locked, throwaway) thread into the
// namespace pinned at path; nstype is a CLONE_NEW* flag.
func joinNamespace(path string, nstype int) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), nstype); err != nil {
		return fmt.Errorf("joining namespace %s: %w", path, err)
	}
	return nil
}
