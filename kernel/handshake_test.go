package kernel

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/testcert"
	"github.com/notp-go/notp/internal/wire"
)

// rawHello is a well-formed hello frame of node with a random nonce.
func rawHello(node notp.Node) []byte {
	h := wire.Hello{Version: wire.Version, Node: node, Nonce: make([]byte, wire.NonceSize)}
	rand.Read(h.Nonce)
	return wire.AppendHello(nil, &h)
}

// dialAttacker opens a plain connection to k (over its own network: TCP,
// or a memNet) and writes the protocol byte and hello, as anyone who can
// reach the port can.
func dialAttacker(t *testing.T, k *Kernel, hello []byte) net.Conn {
	t.Helper()
	c, err := k.cfg.Dial(context.Background(), "tcp", k.Self().Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(append([]byte{ProtoKernel}, hello...)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c
}

// An attacker without the cookie who dials a node gets the node's hello
// (nonce and identity, nothing secret) and then nothing: the node waits
// for the dialer's proof and closes the connection when its handshake
// timeout ends. Had it sent its own proof, the attacker could test cookie
// guesses against it offline.
func TestAcceptorSendsNoProofToUnprovenDialer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 300 * time.Millisecond
		k := newMemNet().start(t, func(c *Config) { c.HandshakeTimeout = timeout })
		start := time.Now()
		c := dialAttacker(t, k, rawHello(notp.Node{ID: "attacker", Host: "127.0.0.1", Port: 9}))
		theirs, err := readSmallFrame(c, wire.MaxHelloSize)
		if err != nil {
			t.Fatalf("reading the node's hello: %v", err)
		}
		var h wire.Hello
		if err := wire.DecodeHello(theirs[wire.HeaderSize:], &h); err != nil || h.Node.ID != k.Self().ID {
			t.Fatalf("node's hello %+v, %v", h, err)
		}
		rest, err := io.ReadAll(c)
		if len(rest) != 0 || err != nil {
			t.Fatalf("node sent %d bytes (a cookie proof) to a dialer that proved nothing (%v)", len(rest), err)
		}
		if took := time.Since(start); took != timeout {
			t.Fatalf("node closed the unproven connection after %v, want its handshake timeout %v", took, timeout)
		}
		synctest.Wait()
		if n := k.Stats().RejectedHandshake; n != 1 {
			t.Fatalf("RejectedHandshake = %d, want 1", n)
		}
	})
}

// A dialer with a wrong cookie is refused without a proof from the node.
func TestAcceptorSendsNoProofToWrongProof(t *testing.T) {
	checkLeaks(t)
	k := startKernel(t, nil)
	c := dialAttacker(t, k, rawHello(notp.Node{ID: "attacker", Host: "127.0.0.1", Port: 9}))
	if _, err := readSmallFrame(c, wire.MaxHelloSize); err != nil {
		t.Fatal(err)
	}
	c.Write(append([]byte{0, 0, 0, wire.MACSize}, make([]byte, wire.MACSize)...))
	if rest, _ := io.ReadAll(c); len(rest) != 0 {
		t.Fatalf("node answered a wrong proof with %d bytes", len(rest))
	}
	waitFor(t, "handshake rejection", func() bool { return k.Stats().RejectedHandshake == 1 })
}

// The node refuses hellos that claim its own ID or carry an invalid node
// before it sends anything.
func TestAcceptorRejectsBadHello(t *testing.T) {
	checkLeaks(t)
	k := startKernel(t, nil)
	self := k.Self()
	for i, n := range []notp.Node{
		self, // a reflection of its own identity
		{ID: "no-host", Port: 9},
		{ID: "no-port", Host: "127.0.0.1"},
		{ID: "white space", Host: "127.0.0.1", Port: 9},
		{ID: "a@b", Host: "127.0.0.1", Port: 9},
	} {
		c := dialAttacker(t, k, rawHello(n))
		if rest, _ := io.ReadAll(c); len(rest) != 0 {
			t.Fatalf("hello of %+v: node answered with %d bytes", n, len(rest))
		}
		waitFor(t, "handshake rejection", func() bool { return k.Stats().RejectedHandshake == uint64(i+1) })
	}
}

// checkHello refuses reflections (this side's nonce or ID), invalid
// nodes, other versions and a disagreement on insecure mode.
func TestCheckHello(t *testing.T) {
	mine := wire.Hello{Version: wire.Version, Node: notp.Node{ID: "me", Host: "127.0.0.1", Port: 1},
		Nonce: bytes.Repeat([]byte{1}, wire.NonceSize)}
	good := wire.Hello{Version: wire.Version, Node: notp.Node{ID: "peer", Host: "127.0.0.1", Port: 2},
		Nonce: bytes.Repeat([]byte{2}, wire.NonceSize)}
	if err := checkHello(&mine, &good, true); err != nil {
		t.Fatalf("good hello: %v", err)
	}
	tests := []struct {
		name   string
		change func(h *wire.Hello)
		want   string
	}{
		{"own nonce", func(h *wire.Hello) { h.Nonce = mine.Nonce }, "own nonce"},
		{"own id", func(h *wire.Hello) { h.Node.ID = "me" }, "this node's id"},
		{"empty host", func(h *wire.Hello) { h.Node.Host = "" }, "invalid node"},
		{"port 0", func(h *wire.Hello) { h.Node.Port = 0 }, "invalid node"},
		{"old version", func(h *wire.Hello) { h.Version = 1 }, "versions [1, 1], this node [2, 2]"},
		{"newer versions only", func(h *wire.Hello) { h.MinVersion, h.Version = 3, 4 }, "versions [3, 4], this node [2, 2]"},
		{"insecure peer", func(h *wire.Hello) { h.Flags = wire.FlagInsecure }, "insecure mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ph := good
			tt.change(&ph)
			err := checkHello(&mine, &ph, true)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("checkHello = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// A dialer whose hello comes back reflected (same ID and nonce, as from a
// peer echoing bytes) refuses it and never sends its proof.
func TestDialerRejectsReflectedHello(t *testing.T) {
	checkLeaks(t)
	k := startKernel(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Every dial is answered with its own hello: the kernel redials after
	// a failed handshake, and WaitConnected reports the latest attempt.
	var sent atomic.Int64
	var handlers sync.WaitGroup
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handlers.Add(1)
			go func() {
				defer handlers.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				var p [1]byte
				io.ReadFull(c, p[:])
				h, err := readSmallFrame(c, wire.MaxHelloSize)
				if err != nil {
					sent.Store(-1 << 40) // not a hello: fail below
					return
				}
				c.Write(h)
				rest, _ := io.ReadAll(c)
				sent.Add(int64(len(rest)))
			}()
		}
	}()
	mirror := notp.Node{ID: "mirror", Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}
	if err := k.Connect(mirror); err != nil {
		t.Fatal(err)
	}
	err = k.WaitConnected(ctxT(t), mirror.ID)
	var le *LinkError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "this node's id") {
		t.Fatalf("WaitConnected = %v, want a *LinkError about the reflected id", err)
	}
	k.Disconnect(ctxT(t), mirror.ID, true)
	ln.Close()
	<-accepted
	handlers.Wait()
	if n := sent.Load(); n != 0 {
		t.Fatalf("dialer sent %d bytes after reflected hellos, want 0", n)
	}
}

// A cookie shorter than MinCookieLen is refused with an error naming the
// fix, unless AllowWeakCookie says it is meant.
func TestWeakCookie(t *testing.T) {
	cfg := testConfig(t)
	cfg.Cookie = "s3cret"
	_, err := New(cfg)
	if !errors.Is(err, ErrWeakCookie) {
		t.Fatalf("New with a 6-byte cookie: %v, want ErrWeakCookie", err)
	}
	for _, want := range []string{"6 bytes", "at least 16", "notp-cli keygen", "AllowWeakCookie"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	cfg.Cookie = strings.Repeat("x", MinCookieLen-1)
	if _, err := New(cfg); !errors.Is(err, ErrWeakCookie) {
		t.Fatalf("New with a %d-byte cookie: %v, want ErrWeakCookie", MinCookieLen-1, err)
	}
	cfg.Cookie = strings.Repeat("x", MinCookieLen)
	if _, err := New(cfg); err != nil {
		t.Fatalf("New with a %d-byte cookie: %v", MinCookieLen, err)
	}
	cfg.Cookie, cfg.AllowWeakCookie = "s3cret", true
	if _, err := New(cfg); err != nil {
		t.Fatalf("New with a weak cookie and AllowWeakCookie: %v", err)
	}
}

// Two kernels with the same weak cookie (allowed) still talk.
func TestWeakCookieAllowed(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, func(c *Config) { c.Cookie, c.AllowWeakCookie = "s3cret", true })
	echo(t, b, "echo")
	if got, err := a.Call(ctxT(t), b.Self(), "echo", []byte("x")); err != nil || string(got) != "x" {
		t.Fatalf("Call = %q, %v", got, err)
	}
}

// A TLS config that allows TLS 1.0 still gets TLS 1.2 at least: a client
// capped at TLS 1.1 is refused, and the caller's config is not changed.
func TestTLSMinVersion(t *testing.T) {
	checkLeaks(t)
	cert := testcert.New(t)
	srv := cert.Config.Clone()
	srv.MinVersion = tls.VersionTLS10
	k := startKernel(t, func(c *Config) { c.TLS = srv })
	if srv.MinVersion != tls.VersionTLS10 {
		t.Fatal("New changed the caller's TLS config")
	}
	cli := cert.Config.Clone()
	cli.MinVersion, cli.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	c, err := tls.Dial("tcp", k.Addr().String(), cli)
	if err == nil {
		err = c.Handshake()
		c.Close()
	}
	if err == nil {
		t.Fatal("a TLS 1.1 client completed the handshake")
	}
	waitFor(t, "TLS rejection", func() bool { return k.Stats().RejectedHandshake == 1 })
	// TLS 1.2 is accepted.
	cli.MaxVersion = tls.VersionTLS12
	c, err = tls.Dial("tcp", k.Addr().String(), cli)
	if err != nil {
		t.Fatalf("TLS 1.2 client: %v", err)
	}
	c.Close()
}

// A relay holding a certificate the nodes accept, which terminates TLS
// towards each side and copies the plaintext between the two sessions,
// cannot splice them: the hello binds each TLS session's keying material,
// so the proofs it forwards do not verify.
func TestTLSRelayCannotSplice(t *testing.T) {
	checkLeaks(t)
	tc := testcert.New(t).Config
	a, b := startKernel(t, func(c *Config) { c.TLS = tc }), startKernel(t, func(c *Config) { c.TLS = tc })
	relay := startTLSRelay(t, tc, b.Addr().String())
	via := notp.Node{ID: b.Self().ID, Host: "127.0.0.1", Port: relay.Addr().(*net.TCPAddr).Port}
	if err := a.Connect(via); err != nil {
		t.Fatal(err)
	}
	err := a.WaitConnected(ctxT(t), via.ID)
	var le *LinkError
	if !errors.As(err, &le) {
		t.Fatalf("connect through the relay: %v, want a *LinkError", err)
	}
	waitFor(t, "spliced handshake rejected", func() bool { return b.Stats().RejectedHandshake >= 1 })
	a.Disconnect(ctxT(t), via.ID, true)
	// The same nodes connect directly.
	connect(t, a, b)
}

// startTLSRelay listens on loopback and relays each connection to target,
// terminating TLS on both sides with cfg; it stops at cleanup.
func startTLSRelay(t *testing.T, cfg *tls.Config, target string) net.Listener {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := tls.Dial("tcp", target, cfg)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(out, in); out.Close() }()
			go func() { defer wg.Done(); io.Copy(in, out); in.Close() }()
		}
	}()
	return ln
}

// From.RemoteAddr is the address the message's connection came from (the
// caller's end of it), and nil for a message a node sends itself.
func TestFromRemoteAddr(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, nil)
	addrs := make(chan net.Addr, 2)
	for _, k := range []*Kernel{a, b} {
		k.Register("addr", HandlerFunc(func(m Message) {
			addrs <- m.From.RemoteAddr()
			k.Reply(m.From, nil)
		}))
	}
	if _, err := a.Call(ctxT(t), b.Self(), "addr", nil); err != nil {
		t.Fatal(err)
	}
	got, ok := (<-addrs).(*net.TCPAddr)
	if !ok || !got.IP.IsLoopback() || got.Port == 0 || got.Port == b.Self().Port || got.Port == a.Self().Port {
		t.Fatalf("RemoteAddr of a's call = %v, want a's end of its connection (an ephemeral loopback port)", got)
	}
	if _, err := a.Call(ctxT(t), a.Self(), "addr", nil); err != nil {
		t.Fatal(err)
	}
	if got := <-addrs; got != nil {
		t.Fatalf("RemoteAddr of a local call = %v, want nil", got)
	}
}
