package kernel

import (
	"io"
	"net"
	"testing"

	"github.com/notp-go/notp/internal/testcert"
)

func TestTLSRoundTrip(t *testing.T) {
	checkLeaks(t)
	tc := testcert.New(t).Config
	a, b := pair(t, false, func(c *Config) { c.TLS = tc })
	echo(t, b, "echo")
	got, err := a.Call(ctxT(t), b.Self(), "echo", []byte("over tls"))
	if err != nil || string(got) != "over tls" {
		t.Fatalf("TLS Call = %q, %v", got, err)
	}
	// A plain-TCP client is rejected by the TLS listener.
	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{ProtoKernel, 0, 0, 0, 1, 0})
	io.Copy(io.Discard, c)
	c.Close()
	waitFor(t, "plain client rejected", func() bool { return b.Stats().RejectedHandshake == 1 })
}

// A foreign protocol shares the port with kernel traffic.
func TestListenDialMux(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, nil)
	echo(t, b, "echo")
	ln, err := b.Listen('R')
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Listen('R'); err == nil {
		t.Fatal("second Listen for the same protocol succeeded")
	}
	if _, err := b.Listen(ProtoKernel); err == nil {
		t.Fatal("Listen(ProtoKernel) succeeded")
	}
	echoOverProto(t, a, b, ln, 'R')
	if _, err := a.Call(ctxT(t), b.Self(), "echo", []byte("k")); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := ln.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}

// echoOverProto has a dial from a to b's port with protocol proto, which
// ln (b's listener for it) accepts, carry "hello" there and back.
func echoOverProto(t *testing.T, a, b *Kernel, ln net.Listener, proto byte) {
	t.Helper()
	done := acceptEcho(ln, func(c net.Conn) io.Reader { return io.LimitReader(c, 5) })
	c, err := a.Dial(ctxT(t), b.Addr().String(), proto)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("mux echo = %q, %v", buf, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
