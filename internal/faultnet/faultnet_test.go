package faultnet

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/testutil"
)

func newNet(t *testing.T) *Network {
	t.Helper()
	n := New(1)
	t.Cleanup(func() { n.Close() })
	return n
}

func host(t *testing.T, n *Network, i int) *Host {
	t.Helper()
	h, err := n.Host(Loopback(i))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func udp(t *testing.T, h *Host) net.PacketConn {
	t.Helper()
	pc, err := h.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// recv reads datagrams from pc until quiet passes with none, returning
// their first 4 bytes as sequence numbers.
func recv(t *testing.T, pc net.PacketConn, quiet time.Duration) []uint32 {
	t.Helper()
	var got []uint32
	buf := make([]byte, 64)
	for {
		pc.SetReadDeadline(time.Now().Add(quiet))
		k, _, err := pc.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return got
			}
			t.Fatal(err)
		}
		if k >= 4 {
			got = append(got, binary.BigEndian.Uint32(buf))
		}
	}
}

func send(t *testing.T, from, to net.PacketConn, count int) {
	t.Helper()
	for i := range count {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(i))
		if _, err := from.WriteTo(b[:], to.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHostsBindTheirOwnLoopbackAddress(t *testing.T) {
	n := newNet(t)
	a := host(t, n, 2)
	if _, err := n.Host(netip.MustParseAddr("192.0.2.1")); !errors.Is(err, ErrAddr) {
		t.Fatalf("non-loopback host: err %v, want ErrAddr", err)
	}
	if _, err := a.ListenPacket("udp", "127.0.0.3:0"); !errors.Is(err, ErrAddr) {
		t.Fatalf("bind on another host's address: err %v, want ErrAddr", err)
	}
	if _, err := a.Listen(context.Background(), "tcp", "127.0.0.3:0"); !errors.Is(err, ErrAddr) {
		t.Fatalf("listen on another host's address: err %v, want ErrAddr", err)
	}
	if _, err := a.Dial(context.Background(), "tcp", "localhost:1"); !errors.Is(err, ErrAddr) {
		t.Fatalf("dial a host name: err %v, want ErrAddr", err)
	}
	// An address that does not parse keeps the parser's error in the chain.
	var ae *net.AddrError
	if _, err := a.Listen(context.Background(), "tcp", "127.0.0.2"); !errors.Is(err, ErrAddr) || !errors.As(err, &ae) {
		t.Fatalf("listen without a port: err %v, want ErrAddr wrapping a *net.AddrError", err)
	}
	pc := udp(t, a)
	if got := addrIP(pc.LocalAddr()); got != a.Addr() {
		t.Fatalf("socket bound on %v, want %v", got, a.Addr())
	}
}

func TestDatagramsAcrossAnAsymmetricBlock(t *testing.T) {
	n := newNet(t)
	a, b := host(t, n, 2), host(t, n, 3)
	pa, pb := udp(t, a), udp(t, b)
	n.Block(a.Addr(), b.Addr()) // a cannot reach b, b still reaches a
	send(t, pa, pb, 10)
	send(t, pb, pa, 10)
	if got := recv(t, pb, 100*time.Millisecond); len(got) != 0 {
		t.Fatalf("b received %d datagrams from a across the block", len(got))
	}
	if got := recv(t, pa, 100*time.Millisecond); len(got) != 10 {
		t.Fatalf("a received %d datagrams from b, want 10 (the other direction is open)", len(got))
	}
	n.Heal()
	send(t, pa, pb, 10)
	if got := recv(t, pb, 100*time.Millisecond); len(got) != 10 {
		t.Fatalf("after heal b received %d datagrams, want 10", len(got))
	}
	if s := n.Stats(); s.PacketsBlocked != 10 || s.PacketsSent != 30 {
		t.Fatalf("stats %+v, want 10 blocked of 30 sent", s)
	}
}

func TestPacketLossDuplicationAndReordering(t *testing.T) {
	cases := []struct {
		name   string
		f      PacketFaults
		check  func(t *testing.T, got []uint32, s Stats)
		sent   int
		settle time.Duration
	}{
		{"loss", PacketFaults{Loss: 0.5}, func(t *testing.T, got []uint32, s Stats) {
			if len(got) < 100 || len(got) > 300 || uint64(400-len(got)) != s.PacketsLost {
				t.Fatalf("received %d of 400 with stats %+v; want about half, the rest counted lost", len(got), s)
			}
		}, 400, 100 * time.Millisecond},
		{"duplicate", PacketFaults{Duplicate: 1}, func(t *testing.T, got []uint32, s Stats) {
			if len(got) != 100 || s.PacketsDuplicated != 50 {
				t.Fatalf("received %d, stats %+v; want every one of 50 twice", len(got), s)
			}
		}, 50, 100 * time.Millisecond},
		{"reorder", PacketFaults{Reorder: 0.5, ReorderDelay: 20 * time.Millisecond}, func(t *testing.T, got []uint32, s Stats) {
			if len(got) != 200 {
				t.Fatalf("received %d of 200; reordering must not lose any", len(got))
			}
			inversions := 0
			for i := 1; i < len(got); i++ {
				if got[i] < got[i-1] {
					inversions++
				}
			}
			if inversions == 0 || s.PacketsReordered == 0 {
				t.Fatalf("no datagram overtaken (stats %+v)", s)
			}
		}, 200, 200 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := newNet(t)
			if err := n.SetPacketFaults(c.f); err != nil {
				t.Fatal(err)
			}
			pa, pb := udp(t, host(t, n, 2)), udp(t, host(t, n, 3))
			send(t, pa, pb, c.sent)
			c.check(t, recv(t, pb, c.settle), n.Stats())
		})
	}
}

func TestPacketFaultsAreValidated(t *testing.T) {
	n := newNet(t)
	for _, f := range []PacketFaults{{Loss: -0.1}, {Duplicate: 1.5}, {Reorder: 0.5, ReorderDelay: 2 * time.Second}, {ReorderDelay: -1}} {
		if err := n.SetPacketFaults(f); err == nil {
			t.Errorf("SetPacketFaults(%+v) accepted", f)
		}
	}
}

// pipe returns both ends of a TCP connection from a to b.
func pipe(t *testing.T, a, b *Host) (ca, cb net.Conn) {
	t.Helper()
	ln, err := b.Listen(context.Background(), "tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ca, err = a.Dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cb, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

func TestABlockCutsConnectionsAndRefusesDials(t *testing.T) {
	n := newNet(t)
	a, b := host(t, n, 2), host(t, n, 3)
	ca, cb := pipe(t, a, b)
	if got := addrIP(cb.RemoteAddr()); got != a.Addr() {
		t.Fatalf("accepted connection from %v, want a's address %v", got, a.Addr())
	}
	// One direction blocked cuts the connection: TCP needs both.
	n.Block(b.Addr(), a.Addr())
	for _, c := range []net.Conn{ca, cb} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("read on a cut connection: %v, want it closed", err)
		}
	}
	if s := n.Stats(); s.ConnsCut != 2 {
		t.Fatalf("ConnsCut = %d, want 2 (both ends)", s.ConnsCut)
	}
	ln, err := b.Listen(context.Background(), "tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, d := range []*Host{a, b} {
		target := ln.Addr().String()
		if d == b {
			lna, err := a.Listen(context.Background(), "tcp", ":0")
			if err != nil {
				t.Fatal(err)
			}
			defer lna.Close()
			target = lna.Addr().String()
		}
		if _, err := d.Dial(context.Background(), "tcp", target); !errors.Is(err, ErrRefused) {
			t.Fatalf("dial from %v across the block: %v, want ErrRefused", d.Addr(), err)
		}
	}
	n.Unblock(b.Addr(), a.Addr())
	pipe(t, a, b)
}

func TestBlackholedDialWaitsForHealOrDeadline(t *testing.T) {
	n := newNet(t)
	n.SetStreamMode(Blackhole)
	a, b := host(t, n, 2), host(t, n, 3)
	ln, err := b.Listen(context.Background(), "tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n.Partition([]netip.Addr{a.Addr()}, []netip.Addr{b.Addr()})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.Dial(ctx, "tcp", ln.Addr().String()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blackholed dial: %v, want DeadlineExceeded", err)
	}

	res := make(chan error, 1)
	go func() {
		c, err := a.Dial(context.Background(), "tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		res <- err
	}()
	testutil.WaitFor(t, "the second dial blackholed", func() bool { return n.Stats().DialsBlackholed >= 2 })
	select {
	case err := <-res:
		t.Fatalf("blackholed dial returned before the heal: %v", err)
	default:
	}
	n.Heal()
	if err := <-res; err != nil {
		t.Fatalf("dial after heal: %v", err)
	}
}

func TestCloseFailsDialsAndDropsHeldDatagrams(t *testing.T) {
	n := New(3)
	n.SetStreamMode(Blackhole)
	a, b := host(t, n, 2), host(t, n, 3)
	pa, pb := udp(t, a), udp(t, b)
	if err := n.SetPacketFaults(PacketFaults{Reorder: 1, ReorderDelay: time.Second}); err != nil {
		t.Fatal(err)
	}
	send(t, pa, pb, 20)
	n.Block(a.Addr(), b.Addr())
	res := make(chan error, 1)
	go func() {
		_, err := a.Dial(context.Background(), "tcp", "127.0.0.3:1")
		res <- err
	}()
	start := time.Now()
	n.Close()
	if err := <-res; !errors.Is(err, ErrClosed) {
		t.Fatalf("blackholed dial at Close: %v, want ErrClosed", err)
	}
	if el := time.Since(start); el > 900*time.Millisecond {
		t.Fatalf("Close took %v: it must not wait out held datagrams", el)
	}
	if got := recv(t, pb, 50*time.Millisecond); len(got) != 0 {
		t.Fatalf("%d held datagrams delivered after Close", len(got))
	}
}
