package mltransport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp/internal/testcert"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
)

// Kernels with the same cookie give memberlist the same key, one derived
// from the stretched cookie under its own label; other cookies give other
// keys, and an insecure kernel none.
func TestSecretKey(t *testing.T) {
	newKernel := func(id, cookie string) *kernel.Kernel {
		k, err := kernel.New(kernelConfig(t, id, cookie))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if k := SecretKey(newKernel("i", "")); k != nil {
		t.Fatalf("SecretKey of an insecure kernel = %x, want nil", k)
	}
	ka := newKernel("a", "c")
	a1, a2, b := SecretKey(ka), SecretKey(newKernel("a2", "c")), SecretKey(newKernel("b", "other"))
	if len(a1) != 32 || len(b) != 32 {
		t.Fatalf("key lengths %d, %d, want 32", len(a1), len(b))
	}
	if !bytes.Equal(a1, a2) {
		t.Fatal("SecretKey is not deterministic")
	}
	if bytes.Equal(a1, b) {
		t.Fatal("different cookies gave the same key")
	}
	if want := ka.DeriveKey("memberlist SecretKey AES-256"); !bytes.Equal(a1, want) {
		t.Fatalf("SecretKey = %x, want the kernel's key for the documented label %x", a1, want)
	}
	if bytes.Equal(a1, ka.DeriveKey("another purpose")) {
		t.Fatal("two labels gave the same key")
	}
	// memberlist accepts it as an AES-256 key.
	if _, err := memberlist.NewKeyring(nil, a1); err != nil {
		t.Fatalf("memberlist rejects the key: %v", err)
	}
}

func TestNewNeedsStartedKernel(t *testing.T) {
	k, err := kernel.New(kernelConfig(t, "a", "c"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(k, nil); !errors.Is(err, kernel.ErrNotStarted) {
		t.Fatalf("New on an unstarted kernel: %v, want kernel.ErrNotStarted", err)
	}
	k2 := startKernel(t, kernelConfig(t, "b", "c"))
	k2.Close()
	if _, err := New(k2, nil); !errors.Is(err, kernel.ErrClosed) {
		t.Fatalf("New on a closed kernel: %v, want kernel.ErrClosed", err)
	}
}

func TestNewUDPPortTaken(t *testing.T) {
	testutil.CheckLeaks(t)
	// Squat a kernel's port number on UDP (retrying in the rare case that
	// another process holds it already).
	var k *kernel.Kernel
	var pc *net.UDPConn
	for i := 0; pc == nil; i++ {
		if i == 5 {
			t.Fatal("no kernel port free on UDP")
		}
		k = startKernel(t, kernelConfig(t, "a", "c"))
		var err error
		pc, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: k.Self().Port})
		if err != nil {
			k.Close()
		}
	}
	_, err := New(k, nil)
	if !errors.Is(err, ErrUDPBind) {
		pc.Close()
		t.Fatalf("New with the UDP port taken: %v, want ErrUDPBind", err)
	}
	if want := strconv.Itoa(k.Self().Port); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name port %s", err, want)
	}
	// The failed New released the kernel's listener for Proto.
	pc.Close()
	tr, err := New(k, nil)
	if err != nil {
		t.Fatalf("New after the port was freed: %v", err)
	}
	tr.Shutdown()
}

func TestOneTransportPerKernel(t *testing.T) {
	testutil.CheckLeaks(t)
	n := newNode(t, kernelConfig(t, "a", "c"))
	if _, err := New(n.k, nil); err == nil {
		t.Fatal("second transport on one kernel succeeded")
	}
	// Shutdown gives the protocol and the UDP port back.
	n.tr.Shutdown()
	tr, err := New(n.k, nil)
	if err != nil {
		t.Fatalf("New after Shutdown: %v", err)
	}
	tr.Shutdown()
}

func TestFinalAdvertiseAddr(t *testing.T) {
	testutil.CheckLeaks(t)
	n := newNode(t, kernelConfig(t, "a", "c"))
	port := n.k.Self().Port
	ip, p, err := n.tr.FinalAdvertiseAddr("", 7946)
	if err != nil || !ip.Equal(net.IPv4(127, 0, 0, 1)) || len(ip) != 4 || p != port {
		t.Fatalf("FinalAdvertiseAddr(\"\") = %v (%d bytes), %d, %v; want 127.0.0.1, %d", ip, len(ip), p, err, port)
	}
	ip, p, err = n.tr.FinalAdvertiseAddr("10.1.2.3", 7946)
	if err != nil || !ip.Equal(net.IPv4(10, 1, 2, 3)) || len(ip) != 4 || p != port {
		t.Fatalf("FinalAdvertiseAddr(10.1.2.3) = %v, %d, %v; want 10.1.2.3, %d", ip, p, err, port)
	}
	if _, _, err := n.tr.FinalAdvertiseAddr("not-an-ip", 1); err == nil {
		t.Fatal("FinalAdvertiseAddr accepted a host name")
	}
	// A kernel on an unspecified address has nothing to advertise.
	unspec := &Transport{port: port}
	if _, _, err := unspec.FinalAdvertiseAddr("", 0); err == nil {
		t.Fatal("unspecified address advertised")
	}
}

// A kernel configured with a host name advertises the IP it bound.
func TestFinalAdvertiseAddrHostName(t *testing.T) {
	testutil.CheckLeaks(t)
	cfg := kernelConfig(t, "a", "c")
	cfg.Node.Host = "localhost"
	n := newNode(t, cfg)
	ip, p, err := n.tr.FinalAdvertiseAddr("", 0)
	if err != nil || !ip.IsLoopback() || p != n.k.Self().Port {
		t.Fatalf("FinalAdvertiseAddr = %v, %d, %v; want a loopback IP, %d", ip, p, err, n.k.Self().Port)
	}
}

func TestPackets(t *testing.T) {
	testutil.CheckLeaks(t)
	a, b := newNode(t, kernelConfig(t, "a", "c")), newNode(t, kernelConfig(t, "b", "c"))
	for _, size := range []int{1, 1400, 65507} { // 65507: the largest IPv4 UDP payload
		msg := bytes.Repeat([]byte{byte(size)}, size)
		before := time.Now()
		ts, err := a.tr.WriteTo(msg, b.k.Self().Addr())
		if err != nil {
			t.Fatalf("WriteTo %d bytes: %v", size, err)
		}
		if ts.Before(before) {
			t.Fatalf("WriteTo time %v precedes the call %v", ts, before)
		}
		p := recvPacket(t, b.tr)
		if !bytes.Equal(p.Buf, msg) {
			t.Fatalf("got %d bytes, want the %d sent", len(p.Buf), size)
		}
		if from, ok := p.From.(*net.UDPAddr); !ok || from.Port != a.k.Self().Port {
			t.Fatalf("From = %v, want port %d", p.From, a.k.Self().Port)
		}
		if p.Timestamp.IsZero() {
			t.Fatal("packet without a timestamp")
		}
	}
	// An empty datagram is dropped: memberlist needs a type byte.
	if _, err := a.tr.WriteToAddress(nil, memberlist.Address{Addr: b.k.Self().Addr(), Name: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.tr.WriteTo([]byte("x"), b.k.Self().Addr()); err != nil {
		t.Fatal(err)
	}
	if p := recvPacket(t, b.tr); string(p.Buf) != "x" {
		t.Fatalf("got %q after an empty datagram, want \"x\"", p.Buf)
	}
	// A host name and an IPv4-mapped literal reach the IPv4 socket too.
	port := strconv.Itoa(b.k.Self().Port)
	for _, to := range []string{"localhost:" + port, "[::ffff:127.0.0.1]:" + port} {
		if _, err := a.tr.WriteTo([]byte(to), to); err != nil {
			t.Fatalf("WriteTo %s: %v", to, err)
		}
		if p := recvPacket(t, b.tr); string(p.Buf) != to {
			t.Fatalf("got %q, want %q", p.Buf, to)
		}
	}
	if _, err := a.tr.WriteTo([]byte("x"), "no-port"); err == nil {
		t.Fatal("WriteTo an address without a port succeeded")
	}
	if b.tr.packetsIn.Load() != 6 {
		t.Fatalf("packetsIn = %d, want 6", b.tr.packetsIn.Load())
	}
}

func TestStreams(t *testing.T) {
	testutil.CheckLeaks(t)
	tc := testcert.New(t).Config
	for _, tlsOn := range []bool{false, true} {
		t.Run("tls="+strconv.FormatBool(tlsOn), func(t *testing.T) {
			ca, cb := kernelConfig(t, "a", "c"), kernelConfig(t, "b", "c")
			if tlsOn {
				ca.TLS, cb.TLS = tc, tc
			}
			a, b := newNode(t, ca), newNode(t, cb)
			c, err := a.tr.DialAddressTimeout(memberlist.Address{Addr: b.k.Self().Addr(), Name: "b"}, 5*time.Second)
			if err != nil {
				t.Fatalf("DialTimeout: %v", err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			s := recvStream(t, b.tr)
			defer s.Close()
			buf := make([]byte, 4)
			if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("server read %q, %v", buf, err)
			}
			if _, err := s.Write([]byte("pong")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
				t.Fatalf("client read %q, %v", buf, err)
			}
		})
	}
}

func TestDialTimeoutHonoured(t *testing.T) {
	testutil.CheckLeaks(t)
	cfg := kernelConfig(t, "a", "c")
	cfg.TLS = testcert.New(t).Config
	a := newNode(t, cfg)
	// A TCP server that never answers the TLS handshake.
	ln := testutil.NewSilentServer(t)

	start := time.Now()
	if _, err := a.tr.DialTimeout(ln.Addr().String(), 100*time.Millisecond); err == nil {
		t.Fatal("dial to a silent server succeeded")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial error %v, want a deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("dial took %v despite a 100ms timeout", d)
	}

	// Shutdown cancels a dial with no timeout.
	res := make(chan error, 1)
	go func() {
		_, err := a.tr.DialTimeout(ln.Addr().String(), 0)
		res <- err
	}()
	testutil.WaitFor(t, "dial in progress", func() bool { return ln.Accepted() == 2 })
	a.tr.Shutdown()
	select {
	case err := <-res:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("dial cancelled by Shutdown: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not cancel the dial")
	}
}

func TestShutdown(t *testing.T) {
	testutil.CheckLeaks(t)
	a, b := newNode(t, kernelConfig(t, "a", "c")), newNode(t, kernelConfig(t, "b", "c"))
	// A packet and a stream nobody reads: Shutdown must not wait on them.
	if _, err := a.tr.WriteTo([]byte("x"), b.k.Self().Addr()); err != nil {
		t.Fatal(err)
	}
	c, err := a.tr.DialTimeout(b.k.Self().Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Wait until b's kernel handed the stream over and b read the packet.
	testutil.WaitFor(t, "stream and packet pending", func() bool {
		return b.tr.acceptBlocked.Load() && b.tr.readBlocked.Load()
	})

	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); b.tr.Shutdown() }()
	}
	wg.Wait()
	if err := b.tr.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	// The pending stream was closed, not leaked.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on a stream dropped by Shutdown: %v, want EOF", err)
	}
	if _, err := b.tr.WriteTo([]byte("x"), a.k.Self().Addr()); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteTo after Shutdown: %v, want ErrClosed", err)
	}
	if _, err := b.tr.DialTimeout(a.k.Self().Addr(), time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("DialTimeout after Shutdown: %v, want ErrClosed", err)
	}
}

// The kernel may close before memberlist shuts the transport down.
func TestKernelClosedFirst(t *testing.T) {
	testutil.CheckLeaks(t)
	a := newNode(t, kernelConfig(t, "a", "c"))
	a.k.Close()
	// The transport's accept loop ends on its own when the kernel closes.
	done := make(chan struct{})
	go func() { a.tr.Shutdown(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown hangs after the kernel closed")
	}
}
