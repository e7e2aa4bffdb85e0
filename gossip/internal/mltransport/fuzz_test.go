package mltransport

import (
	"net"
	"testing"
)

// FuzzFinalAdvertiseAddr feeds arbitrary advertise addresses: an IP literal
// is advertised in canonical form with the kernel's port, anything else is
// an error, never a panic.
func FuzzFinalAdvertiseAddr(f *testing.F) {
	for _, s := range []string{"", "10.0.0.1", "::1", "::ffff:1.2.3.4", "host", "1.2.3.4:5", "fe80::1%eth0"} {
		f.Add(s)
	}
	tr := &Transport{ip: net.IPv4(127, 0, 0, 1).To4(), port: 7022}
	f.Fuzz(func(t *testing.T, s string) {
		ip, port, err := tr.FinalAdvertiseAddr(s, 1)
		if err != nil {
			if s == "" || net.ParseIP(s) != nil {
				t.Fatalf("FinalAdvertiseAddr(%q): %v", s, err)
			}
			return
		}
		if port != 7022 || ip == nil || (ip.To4() != nil && len(ip) != 4) {
			t.Fatalf("FinalAdvertiseAddr(%q) = %v (%d bytes), %d", s, ip, len(ip), port)
		}
	})
}
