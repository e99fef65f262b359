// Package testcdi is test support: the CDI spec the unit and end-to-end
// tests of CDI device requests resolve against.
package testcdi

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// Device is the fully qualified name of the one device the spec has.
const Device = "vendor.test/dev=null"

// WriteSpec writes into dir a CDI spec that exposes the host's /dev/null
// as Device at /dev/xnull, with the environment variable XNULL=present and
// a read-only bind mount of mountSrc at /xnull-data.
func WriteSpec(dir, mountSrc string) error {
	spec := map[string]any{
		"cdiVersion": "0.6.0",
		"kind":       "vendor.test/dev",
		"devices": []any{map[string]any{
			"name": "null",
			"containerEdits": map[string]any{
				"deviceNodes": []any{map[string]any{"path": "/dev/xnull", "hostPath": "/dev/null"}},
				"env":         []string{"XNULL=present"},
				"mounts": []any{map[string]any{
					"hostPath": mountSrc, "containerPath": "/xnull-data", "options": []string{"bind", "ro"},
				}},
			},
		}},
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "vendor-test.json"), b, 0o644)
}
