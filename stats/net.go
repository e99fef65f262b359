package stats

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/arbor-cri/arbor/internal/nsthread"
)

// Interface holds the cumulative counters of one network interface.
type Interface struct {
	Name                                    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// Network is one reading of a network namespace's interfaces (loopback
// excluded).
type Network struct {
	Timestamp  time.Time
	Interfaces []Interface
}

// ParseNetDev parses the /proc/net/dev format: two header lines, then
// "name: rx_bytes rx_packets rx_errs rx_drop fifo frame compressed
// multicast tx_bytes tx_packets tx_errs tx_drop ...". Loopback is left out.
func ParseNetDev(r io.Reader) ([]Interface, error) {
	var out []Interface
	sc := bufio.NewScanner(r)
	for line := 0; sc.Scan(); line++ {
		if line < 2 {
			continue
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return nil, fmt.Errorf("net/dev line %d: no interface name", line+1)
		}
		iface, err := parseNetDevFields(strings.TrimSpace(name), strings.Fields(rest))
		if err != nil {
			return nil, fmt.Errorf("net/dev line %d: %w", line+1, err)
		}
		if iface.Name != "lo" {
			out = append(out, iface)
		}
	}
	return out, sc.Err()
}

func parseNetDevFields(name string, f []string) (Interface, error) {
	if len(f) < 16 {
		return Interface{}, fmt.Errorf("interface %s: %d fields, want 16", name, len(f))
	}
	var n [16]uint64
	for i := range n {
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return Interface{}, fmt.Errorf("interface %s: %w", name, err)
		}
		n[i] = v
	}
	return Interface{
		Name: name, RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
		TxBytes: n[8], TxPackets: n[9], TxErrors: n[10], TxDropped: n[11],
	}, nil
}

// ReadNetworkOfPid reads the interfaces of the network namespace process
// pid is in, through /proc/<pid>/net/dev.
func ReadNetworkOfPid(pid int) (Network, error) {
	return readNetDevFile(fmt.Sprintf("/proc/%d/net/dev", pid))
}

// ReadNetworkOfNetns reads the interfaces of the network namespace pinned
// at nsPath. It joins the namespace on a throwaway locked OS thread, which
// the Go runtime ends afterwards, so no other goroutine ever runs in it.
func ReadNetworkOfNetns(nsPath string) (Network, error) {
	var n Network
	err := nsthread.Run(func() error {
		if err := joinNetns(nsPath); err != nil {
			return err
		}
		var err error
		n, err = readNetDevFile("/proc/thread-self/net/dev")
		return err
	})
	return n, err
}

func readNetDevFile(path string) (Network, error) {
	f, err := os.Open(path)
	if err != nil {
		return Network{}, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	ifaces, err := ParseNetDev(f)
	if err != nil {
		return Network{}, fmt.Errorf("reading %s: %w", path, err)
	}
	return Network{Timestamp: time.Now(), Interfaces: ifaces}, nil
}

func joinNetns(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("joining network namespace %s: %w", path, err)
	}
	return nil
}

// DefaultInterface is the pod interface CNI plugins create and the
// kubelet reports as the default.
const DefaultInterface = "eth0"
