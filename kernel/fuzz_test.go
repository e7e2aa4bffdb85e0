package kernel

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/wire"
)

// FuzzHandshake feeds arbitrary bytes to the acceptor side of the hello:
// it must fail (or succeed) without panicking or hanging. The peer is a
// scripted connection (the input, then end of file) rather than a pipe with
// goroutines behind it, so an input costs the handshake's own work.
func FuzzHandshake(f *testing.F) {
	h := wire.AppendHello(nil, &wire.Hello{Version: wire.Version, Node: notp.Node{ID: "x", Host: "h", Port: 1}, Nonce: make([]byte, wire.NonceSize)})
	f.Add(h)
	f.Add(append(h, 0, 0, 0, 32))
	f.Add([]byte{0, 0, 0, 1, 0x90})
	k, err := New(Config{Node: notp.Node{ID: "fz", Host: "127.0.0.1"}, Cookie: testCookie})
	if err != nil {
		f.Fatal(err)
	}
	var c scriptConn
	f.Fuzz(func(t *testing.T, in []byte) {
		c.reset(in)
		s, err := k.handshake(&c, false, time.Now().Add(200*time.Millisecond))
		if err == nil && s.peer.ID == "" {
			t.Fatal("handshake accepted an empty node id")
		}
		if err == nil {
			t.Fatal("handshake succeeded without the cookie proof")
		}
	})
}

// scriptConn is a net.Conn whose peer sent a fixed input and then closed:
// reads return the input then end of file, writes are dropped,
// deadlines are accepted and ignored (nothing ever blocks).
type scriptConn struct {
	r bytes.Reader
}

func (c *scriptConn) reset(in []byte) {
	c.r.Reset(in)
}

func (c *scriptConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }
