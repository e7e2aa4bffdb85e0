package advertise

import (
	"errors"
	"net"
	"testing"
)

// FuzzAddr feeds arbitrary advertise addresses: an IP literal is
// advertised in canonical form with the kernel's port, anything else is
// ErrNotIP, never a panic.
func FuzzAddr(f *testing.F) {
	for _, s := range []string{"", "10.0.0.1", "::1", "::ffff:1.2.3.4", "host", "1.2.3.4:5", "fe80::1%eth0"} {
		f.Add(s)
	}
	own := net.IPv4(127, 0, 0, 1).To4()
	f.Fuzz(func(t *testing.T, s string) {
		ip, port, err := Addr(s, own, 7022)
		if err != nil {
			if s == "" || net.ParseIP(s) != nil || !errors.Is(err, ErrNotIP) {
				t.Fatalf("Addr(%q): %v", s, err)
			}
			return
		}
		if port != 7022 || ip == nil || (ip.To4() != nil && len(ip) != 4) {
			t.Fatalf("Addr(%q) = %v (%d bytes), %d", s, ip, len(ip), port)
		}
		if s != "" && !ip.Equal(net.ParseIP(s)) {
			t.Fatalf("Addr(%q) = %v, another address", s, ip)
		}
	})
}

// An unset address advertises the kernel's IP, or fails when the kernel
// listens on an unspecified address.
func TestAddrDefault(t *testing.T) {
	own := net.IPv4(10, 0, 0, 2).To4()
	if ip, port, err := Addr("", own, 9); err != nil || !ip.Equal(own) || port != 9 {
		t.Fatalf("Addr(\"\", %v) = %v, %d, %v", own, ip, port, err)
	}
	if _, _, err := Addr("", nil, 9); !errors.Is(err, ErrUnspecified) {
		t.Fatalf("Addr with no IP = %v, want ErrUnspecified", err)
	}
	if ip, _, _ := Addr("::ffff:1.2.3.4", nil, 9); len(ip) != 4 {
		t.Fatalf("IPv4-mapped address advertised as %d bytes", len(ip))
	}
}
