package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/cookiekey"
	"github.com/notp-go/notp/internal/wire"
)

// proofLeak probes the node as a dialer without the cookie (see
// probeProof), then, for information, times offline guesses against a
// dialer's proof (see dialerProofRate): the one proof the hello still
// hands out, to whoever a node dials.
func proofLeak(ctx context.Context, e *env) (string, error) {
	notes, err := probeProof(ctx, e.node.node.Addr(), e.cfg)
	if err != nil {
		return notes, err
	}
	rate, err := dialerProofRate(ctx, e.cfg.cookie, e.cfg.guessFor)
	if err != nil {
		return notes, err
	}
	return notes + fmt.Sprintf("; for information: a dialer's proof, which a listener that a node dials gets, takes %.1f offline guesses/s on one core (argon2id per guess)", rate), nil
}

// probeProof sends the protocol byte and a valid hello without a cookie,
// then waits cfg.proofWait to see whether the node sends anything before
// the dialer proved anything. If it sends its proof, that is an offline
// oracle: every cookie guess can be checked without the node, and
// probeProof measures how fast and tries a dictionary holding the cookie
// (within ctx's time).
func probeProof(ctx context.Context, addr string, cfg config) (string, error) {
	if err := checkLoopback(addr); err != nil {
		return "", err
	}
	c, err := net.DialTimeout("tcp", addr, handshakeTimeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	t, err := helloExchange(c, attacker("proof"))
	if err != nil {
		return fmt.Sprintf("no proof leak: no hello from the node to a dialer without a cookie (%v)", err), nil
	}
	start := time.Now()
	c.SetReadDeadline(start.Add(cfg.proofWait))
	frame, err := readFrame(c, wire.MaxHelloSize)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no proof leak: after its hello the node sent nothing within %v to a dialer that did not prove", cfg.proofWait), nil
	case err != nil:
		return fmt.Sprintf("no proof leak: after its hello the node sent nothing to a dialer that did not prove, and closed the connection after %v (%v)",
			time.Since(start).Round(time.Millisecond), err), nil
	}
	after := time.Since(start)
	proof := frame[wire.HeaderSize:]
	verify := proofVerifier(t, cookiekey.ProofAcceptor, proof)
	if len(proof) != wire.MACSize || !verify(cfg.cookie) {
		return fmt.Sprintf("UNEXPECTED: the node sent a %d-byte frame %v after its hello, before the dialer proved anything; it is not its proof of the cookie",
			len(proof), after.Round(time.Microsecond)), nil
	}
	rate := guessRate(ctx, verify, cfg.guessFor)
	notes := fmt.Sprintf("LEAK: the node sent its proof %v after its hello, before the dialer proved anything; %.1f offline guesses/s on one core",
		after.Round(time.Microsecond), rate)
	return notes + "; " + searchDictionary(ctx, verify, dictionary(cfg.dictWords, cfg.cookie)), nil
}

// searchDictionary checks words against verify in order until one
// matches or ctx ends, and says how it went.
func searchDictionary(ctx context.Context, verify func(string) bool, words []string) string {
	t0 := time.Now()
	for i, w := range words {
		if ctx.Err() != nil {
			return fmt.Sprintf("cookie not reached in a %d-word dictionary: %d words checked in %v (%v)",
				len(words), i, time.Since(t0).Round(time.Millisecond), ctx.Err())
		}
		if verify(w) {
			return fmt.Sprintf("cookie recovered from a %d-word dictionary (word %d) in %v",
				len(words), i+1, time.Since(t0).Round(time.Microsecond))
		}
	}
	return fmt.Sprintf("cookie not found in a %d-word dictionary", len(words))
}

// dialerProofRate captures a real dialer's proof and times offline guesses
// against it for d. A kernel holding the cookie (the same code as the
// node's) dials a listener of ours posing as a node; the listener answers
// its hello and reads the proof the dialer then sends. That is what any
// address a node can be made to dial receives. The captured proof is
// checked against the real cookie first, so a drift between this file
// and the kernel's hello fails here.
func dialerProofRate(ctx context.Context, cookie string, d time.Duration) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("attack: impostor listener: %w", err)
	}
	defer ln.Close()
	impostor := notp.Node{ID: "impostor", Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}
	dialer, err := newClient(ctx, "proof-dialer", cookie, impostor)
	if err != nil {
		return 0, err
	}
	defer dialer.Close()
	ln.(*net.TCPListener).SetDeadline(deadlineOf(ctx, handshakeTimeout))
	c, err := ln.Accept()
	if err != nil {
		return 0, fmt.Errorf("attack: no dial from the cookie holder: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	t, proof, err := captureDialerProof(c, impostor)
	if err != nil {
		return 0, err
	}
	verify := proofVerifier(t, cookiekey.ProofDialer, proof)
	if !verify(cookie) {
		return 0, errors.New("attack: the captured dialer proof does not match the cookie: this bench and the kernel disagree on the hello")
	}
	return guessRate(ctx, verify, d), nil
}

// captureDialerProof is the acceptor's side of the hello up to the
// dialer's proof, as self: it returns the transcript and the proof.
func captureDialerProof(c net.Conn, self notp.Node) (transcript, proof []byte, err error) {
	var proto [1]byte
	if _, err := c.Read(proto[:]); err != nil || proto[0] != wire.ProtoKernel {
		return nil, nil, fmt.Errorf("attack: impostor: protocol byte %d: %v", proto[0], err)
	}
	theirs, err := readFrame(c, wire.MaxHelloSize)
	if err != nil {
		return nil, nil, fmt.Errorf("attack: impostor: read hello: %w", err)
	}
	h := wire.Hello{Version: wire.Version, Node: self, Nonce: make([]byte, wire.NonceSize)}
	for i := range h.Nonce {
		h.Nonce[i] = byte(rand.Uint32())
	}
	mine := wire.AppendHello(nil, &h)
	if _, err := c.Write(mine); err != nil {
		return nil, nil, fmt.Errorf("attack: impostor: write hello: %w", err)
	}
	p, err := readFrame(c, wire.MACSize)
	if err != nil {
		return nil, nil, fmt.Errorf("attack: impostor: read proof: %w", err)
	}
	return append(theirs, mine...), p[wire.HeaderSize:], nil
}

// guessRate times offline guesses against verify on this goroutine for d
// (at least one guess) and returns guesses per second.
func guessRate(ctx context.Context, verify func(string) bool, d time.Duration) float64 {
	start := time.Now()
	n := 0
	for n == 0 || time.Since(start) < d && ctx.Err() == nil {
		verify("guess-" + strconv.Itoa(n))
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}

// dictionary returns n made-up candidate cookies with the real one at a
// random place among them, as an attacker's wordlist that contains it.
func dictionary(n int, cookie string) []string {
	words := make([]string, 0, n+1)
	for i := range n {
		words = append(words, fmt.Sprintf("cookie-%06d-%x", i, i*2654435761))
	}
	at := rand.IntN(n + 1)
	words = append(words[:at], append([]string{cookie}, words[at:]...)...)
	return words
}
