package mltransport

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/notp-go/notp/kernel"
)

// countingPC counts the datagrams written through it.
type countingPC struct {
	net.PacketConn
	writes atomic.Int32
}

func (c *countingPC) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.writes.Add(1)
	return c.PacketConn.WriteTo(b, addr)
}

// Config.ListenPacket replaces the UDP socket: it is asked for the
// kernel's address, and packets go out through what it returns.
func TestConfigListenPacketHook(t *testing.T) {
	var (
		k     *kernel.Kernel
		tr    *Transport
		err   error
		asked string
		pc    *countingPC
	)
	hook := func(network, addr string) (net.PacketConn, error) {
		asked = network + " " + addr
		c, err := net.ListenPacket(network, addr)
		if err != nil {
			return nil, err
		}
		pc = &countingPC{PacketConn: c}
		return pc, nil
	}
	// The kernel's free TCP port may be taken for UDP: retry, as newNode.
	for range 5 {
		k = startKernel(t, kernelConfig(t, "a", "hook-test-cookie-0123456789abcdef"))
		tr, err = NewWithConfig(k, Config{ListenPacket: hook})
		if !errors.Is(err, ErrUDPBind) {
			break
		}
		k.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown()
	if want := "udp " + k.Addr().String(); asked != want {
		t.Fatalf("ListenPacket asked for %q, want %q", asked, want)
	}
	// A datagram to itself goes out through the hook and comes back.
	if _, err := tr.WriteTo([]byte("ping"), k.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if pc.writes.Load() != 1 {
		t.Fatalf("%d writes through the hook's socket, want 1", pc.writes.Load())
	}
	select {
	case p := <-tr.PacketCh():
		if string(p.Buf) != "ping" {
			t.Fatalf("got %q", p.Buf)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the datagram never arrived")
	}
}
