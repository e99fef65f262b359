package harness

import (
	"encoding/binary"
	"net"
	"testing"
)

func TestReserveSubnetHandsEachOutOnce(t *testing.T) {
	seen := map[string]bool{}
	bridges := map[string]bool{}
	for range 5 {
		e := &Env{}
		if err := e.reserveSubnet(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.subnetLock.Close() })
		if seen[e.Subnet.String()] || bridges[e.Bridge] {
			t.Fatalf("subnet %s or bridge %s handed out twice", e.Subnet, e.Bridge)
		}
		seen[e.Subnet.String()], bridges[e.Bridge] = true, true
		if used, err := subnetInUse(e.Subnet); err != nil || used {
			t.Errorf("reserved subnet %s is in use on the host: %v %v", e.Subnet, used, err)
		}
	}
}

func TestSubnetInUse(t *testing.T) {
	_, loopback, _ := net.ParseCIDR("127.0.5.0/24")
	if used, err := subnetInUse(loopback); err != nil || !used {
		t.Errorf("127.0.5.0/24 is inside lo's 127.0.0.0/8: used %v, %v", used, err)
	}
}

func TestProcRouteIP(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the sample is little-endian")
	}
	ip, err := procRouteIP("0059000A") // as /proc/net/route shows 10.0.89.0
	if err != nil || !ip.Equal(net.IPv4(10, 0, 89, 0)) {
		t.Errorf("procRouteIP: %v %v", ip, err)
	}
}
