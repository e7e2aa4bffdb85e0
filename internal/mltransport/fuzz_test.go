package mltransport

import (
	"bytes"
	"net"
	"testing"
)

// FuzzSecretKey checks SecretKey's properties on any cookie: nil only for
// the empty cookie, otherwise 32 deterministic bytes that differ from the
// key of a different cookie.
func FuzzSecretKey(f *testing.F) {
	for _, s := range []string{"", "c", "cookie", "\x00", string(make([]byte, 1000))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cookie string) {
		k := SecretKey(cookie)
		if cookie == "" {
			if k != nil {
				t.Fatal("key for the empty cookie")
			}
			return
		}
		if len(k) != 32 || !bytes.Equal(k, SecretKey(cookie)) {
			t.Fatalf("key %x is not 32 deterministic bytes", k)
		}
		if bytes.Equal(k, SecretKey(cookie+"x")) {
			t.Fatal("two cookies share a key")
		}
	})
}

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
