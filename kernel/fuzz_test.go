package kernel

import (
	"net"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/wire"
)

// FuzzHandshake feeds arbitrary bytes to the acceptor side of the hello:
// it must fail (or succeed) without panicking or hanging.
func FuzzHandshake(f *testing.F) {
	h := wire.AppendHello(nil, &wire.Hello{Version: wire.Version, Node: notp.Node{ID: "x", Host: "h", Port: 1}, Nonce: make([]byte, wire.NonceSize)})
	f.Add(h)
	f.Add(append(h, 0, 0, 0, 32))
	f.Add([]byte{0, 0, 0, 1, 0x90})
	k, err := New(Config{Node: notp.Node{ID: "fz", Host: "127.0.0.1"}, Cookie: testCookie})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c1, c2 := net.Pipe()
		defer c1.Close()
		go func() {
			defer c2.Close()
			c2.SetDeadline(time.Now().Add(time.Second))
			go func() {
				buf := make([]byte, 512)
				for {
					if _, err := c2.Read(buf); err != nil {
						return
					}
				}
			}()
			c2.Write(in)
		}()
		s, err := k.handshake(c1, false, time.Now().Add(200*time.Millisecond))
		if err == nil && s.peer.ID == "" {
			t.Fatal("handshake accepted an empty node id")
		}
		if err == nil {
			t.Fatal("handshake succeeded without the cookie proof")
		}
	})
}
