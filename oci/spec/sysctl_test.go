package spec

import (
	"strings"
	"testing"
)

func TestSysctls(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string]string
		hostNet bool
		hostIPC bool
		want    map[string]string
		wantErr string
	}{
		{"safe net and ipc", map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"}, false, false,
			map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"}, ""},
		{"slash form", map[string]string{"net/ipv4/tcp_syncookies": "1"}, false, false, map[string]string{"net.ipv4.tcp_syncookies": "1"}, ""},
		{"mqueue", map[string]string{"fs.mqueue.msg_max": "20"}, false, false, map[string]string{"fs.mqueue.msg_max": "20"}, ""},
		{"ipc sysctl with host network is fine", map[string]string{"kernel.msgmax": "1"}, true, false, map[string]string{"kernel.msgmax": "1"}, ""},
		{"net with host network", map[string]string{"net.ipv4.tcp_syncookies": "1"}, true, false, nil, "host network"},
		{"uts with host network", map[string]string{"kernel.hostname": "x"}, true, false, nil, "host network"},
		{"ipc with host ipc", map[string]string{"kernel.shmmax": "1"}, false, true, nil, "host IPC"},
		{"not namespaced", map[string]string{"vm.swappiness": "1"}, false, false, nil, "not namespaced"},
		{"kernel non-ipc", map[string]string{"kernel.panic": "1"}, false, false, nil, "not namespaced"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Sysctls(tc.in, tc.hostNet, tc.hostIPC)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
