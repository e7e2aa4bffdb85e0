package main

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/cookiekey"
	"github.com/notp-go/notp/internal/wire"
)

// fakeAcceptor listens on 127.0.0.1, answers one kernel hello as a node
// with a cookie would, and then hands the connection and the transcript to
// then. It returns the address; the test's cleanup stops it.
func fakeAcceptor(t *testing.T, then func(c net.Conn, transcript []byte)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var proto [1]byte
		if _, err := io.ReadFull(c, proto[:]); err != nil || proto[0] != wire.ProtoKernel {
			t.Errorf("fake acceptor: protocol byte %d: %v", proto[0], err)
			return
		}
		theirs, err := readFrame(c, wire.MaxHelloSize)
		if err != nil {
			t.Errorf("fake acceptor: read hello: %v", err)
			return
		}
		h := wire.Hello{Version: wire.Version, Node: notp.Node{ID: "fake", Host: "127.0.0.1", Port: 1}, Nonce: make([]byte, wire.NonceSize)}
		rand.Read(h.Nonce)
		mine := wire.AppendHello(nil, &h)
		if _, err := c.Write(mine); err != nil {
			t.Errorf("fake acceptor: write hello: %v", err)
			return
		}
		then(c, append(theirs, mine...))
	})
	return ln.Addr().String()
}

// probeProof tells each way a node can behave after its hello apart: the
// rows must read right whether or not the node leaks its proof.
func TestProbeProof(t *testing.T) {
	const cookie = "probe proof test cookie 0123456789"
	cfg := smallConfig()
	cfg.cookie, cfg.proofWait, cfg.dictWords = cookie, 300*time.Millisecond, 3
	// Stretched before the probes: a stretching takes tens of milliseconds,
	// more on a loaded machine, and a fake acceptor that stretched after
	// the hello could miss the probe's 300 ms window.
	master, other := cookiekey.Stretch(cookie), cookiekey.Stretch("another cookie 0123456789")
	cases := []struct {
		name string
		then func(c net.Conn, transcript []byte)
		want []string
	}{
		{"proves first (old order)", func(c net.Conn, tr []byte) {
			c.Write(proofFrame(master, cookiekey.ProofAcceptor, tr))
			io.Copy(io.Discard, c)
		}, []string{"LEAK: the node sent its proof", "offline guesses/s", "cookie recovered from a 4-word dictionary"}},
		{"sends a frame that is no proof", func(c net.Conn, tr []byte) {
			c.Write(proofFrame(other, cookiekey.ProofAcceptor, tr))
			io.Copy(io.Discard, c)
		}, []string{"UNEXPECTED: the node sent a 32-byte frame", "it is not its proof of the cookie"}},
		{"waits for the dialer's proof", func(c net.Conn, tr []byte) {
			io.Copy(io.Discard, c)
		}, []string{"no proof leak: after its hello the node sent nothing within 300ms"}},
		{"closes", func(c net.Conn, tr []byte) {
			c.Close()
		}, []string{"no proof leak: after its hello the node sent nothing", "closed the connection"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeAcceptor(t, tc.then)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			notes, err := probeProof(ctx, addr, cfg)
			if err != nil {
				t.Fatalf("probeProof: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(notes, w) {
					t.Errorf("notes %q lack %q", notes, w)
				}
			}
		})
	}
}

// A dialer's proof captured by the impostor listener checks against the
// cookie (so the bench's hello matches the kernel's) and the guess rate is
// a positive figure.
func TestDialerProofRate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rate, err := dialerProofRate(ctx, "dialer proof test cookie 0123456789", 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if rate <= 0 {
		t.Fatalf("rate %v", rate)
	}
}

// authDial fails, and says why, when the node's proof is not of the
// cookie or when the node closes instead of proving.
func TestAuthDialRejects(t *testing.T) {
	const cookie = "auth dial test cookie 0123456789"
	other := cookiekey.Stretch("another cookie 0123456789")
	for name, tc := range map[string]struct {
		then func(c net.Conn, transcript []byte)
		want string
	}{
		"wrong proof": {func(c net.Conn, tr []byte) {
			readFrame(c, wire.MACSize)
			c.Write(proofFrame(other, cookiekey.ProofAcceptor, tr))
			io.Copy(io.Discard, c)
		}, "the node's proof does not match the cookie"},
		"closes": {func(c net.Conn, tr []byte) {
			readFrame(c, wire.MACSize)
		}, "read proof"},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := authDial(fakeAcceptor(t, tc.then), cookie, attacker("test"))
			if err == nil {
				s.Close()
				t.Fatal("authDial succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("authDial: %v, want it to say %q", err, tc.want)
			}
		})
	}
}
