package main

// The client side of the kernel's authenticated connection, written by hand
// so that attacks can send records the kernel package would never send
// (partial streams, calls whose replies are never read). Everything that
// depends on the handshake lives in this file: when the hello changes, only
// helloExchange, clientHandshake and proofVerifier need editing; the key
// schedule (stretching, labels) is the kernel's own, from
// internal/cookiekey. The attacks only call authDial, sendRecord, drain and
// Close (records and their MACs are the same whatever the hello).

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/cookiekey"
	"github.com/notp-go/notp/internal/wire"
)

// handshakeTimeout bounds a whole client handshake.
const handshakeTimeout = 5 * time.Second

// helloExchange writes the kernel protocol byte and a hello for self on c
// and reads the acceptor's hello. It returns the transcript: both hello
// frames as sent, length prefixes included (the bench never uses TLS, so
// no channel binding follows them).
func helloExchange(c net.Conn, self notp.Node) (transcript []byte, err error) {
	h := wire.Hello{Version: wire.Version, Node: self, Nonce: make([]byte, wire.NonceSize)}
	rand.Read(h.Nonce)
	mine := wire.AppendHello(nil, &h)
	if _, err := c.Write(append([]byte{wire.ProtoKernel}, mine...)); err != nil {
		return nil, fmt.Errorf("attack: write hello: %w", err)
	}
	theirs, err := readFrame(c, wire.MaxHelloSize)
	if err != nil {
		return nil, fmt.Errorf("attack: read hello: %w", err)
	}
	var ph wire.Hello
	if err := wire.DecodeHello(theirs[wire.HeaderSize:], &ph); err != nil {
		return nil, fmt.Errorf("attack: peer hello: %w", err)
	}
	if ph.Version != wire.Version {
		return nil, fmt.Errorf("attack: peer speaks protocol version %d, want %d", ph.Version, wire.Version)
	}
	if ph.Flags&wire.FlagInsecure != 0 {
		return nil, errors.New("attack: peer runs without a cookie")
	}
	return append(mine, theirs...), nil
}

// proofFrame is the proof frame HMAC(master, label || transcript).
func proofFrame(master []byte, label string, transcript []byte) []byte {
	p := binary.BigEndian.AppendUint32(nil, wire.MACSize)
	return append(p, cookiekey.Derive(master, label, transcript)...)
}

// proofVerifier returns a function telling whether a cookie guess
// reproduces proof, made with label over transcript: the check an offline
// attacker holding a proof runs per guess, stretching included.
func proofVerifier(transcript []byte, label string, proof []byte) func(guess string) bool {
	return func(guess string) bool {
		return hmac.Equal(cookiekey.Derive(cookiekey.Stretch(guess), label, transcript), proof)
	}
}

// clientHandshake runs the dialer's side of the handshake on c with the
// cookie's master key and returns the session keys (dialer->acceptor,
// acceptor->dialer). The dialer proves first; the acceptor answers with
// its proof only if the dialer's was right, and closes otherwise.
func clientHandshake(c net.Conn, master []byte, self notp.Node) (send, recv []byte, err error) {
	t, err := helloExchange(c, self)
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.Write(proofFrame(master, cookiekey.ProofDialer, t)); err != nil {
		return nil, nil, fmt.Errorf("attack: write proof: %w", err)
	}
	got, err := readFrame(c, wire.MACSize)
	if err != nil {
		return nil, nil, fmt.Errorf("attack: read proof (the node closes without one when ours is wrong): %w", err)
	}
	if !hmac.Equal(got[wire.HeaderSize:], cookiekey.Derive(master, cookiekey.ProofAcceptor, t)) {
		return nil, nil, errors.New("attack: the node's proof does not match the cookie")
	}
	return cookiekey.Derive(master, cookiekey.KeyDialerToAcceptor, t), cookiekey.Derive(master, cookiekey.KeyAcceptorToDialer, t), nil
}

// readFrame reads one length-prefixed frame of at most max bytes and
// returns it with its prefix.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [wire.HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > uint32(max) {
		return nil, fmt.Errorf("attack: frame of %d bytes, max %d", n, max)
	}
	b := make([]byte, wire.HeaderSize+int(n))
	copy(b, hdr[:])
	if _, err := io.ReadFull(r, b[wire.HeaderSize:]); err != nil {
		return nil, err
	}
	return b, nil
}

// rawSession is an authenticated kernel connection driven by hand.
// sendRecord belongs to one goroutine; drain (or readRecord) may run on
// another.
type rawSession struct {
	c       net.Conn
	sendMAC hash.Hash
	sendSeq uint64
	buf     []byte // the record being built, reused
	recvMAC hash.Hash
	recvSeq uint64
}

// authDial connects to the node at addr (a 127.0.0.1 address) as self and
// authenticates with cookie (stretched here: tens of milliseconds).
func authDial(addr, cookie string, self notp.Node) (*rawSession, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", addr, handshakeTimeout)
	if err != nil {
		return nil, fmt.Errorf("attack: dial %s: %w", addr, err)
	}
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	send, recv, err := clientHandshake(c, cookiekey.Stretch(cookie), self)
	if err != nil {
		c.Close()
		return nil, err
	}
	s := &rawSession{c: c, sendMAC: hmac.New(sha256.New, send), recvMAC: hmac.New(sha256.New, recv)}
	// A round trip of records checks the session keys and record MACs
	// both ways, not only the proofs.
	if err := s.ping(); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return s, nil
}

// ping sends a kernel ping and waits for its pong: a round trip of
// records MACed both ways.
func (s *rawSession) ping() error {
	const tag = "attack-ping"
	if err := s.sendRecord(&wire.Envelope{Kind: wire.KindPing, Tag: tag}); err != nil {
		return err
	}
	for {
		p, err := s.readRecord(1 << 20)
		if err != nil {
			return fmt.Errorf("attack: waiting for the pong: %w", err)
		}
		found := false
		err = wire.SplitFrames(p, len(p), func(f []byte) error {
			var e wire.Envelope
			if err := wire.DecodeEnvelope(f, &e); err != nil {
				return err
			}
			found = found || e.Kind == wire.KindPong && e.ID == tag
			return nil
		})
		if err != nil || found {
			return err
		}
	}
}

// readRecord reads one record of at most max payload bytes and checks
// its MAC; it returns the payload (the frames).
func (s *rawSession) readRecord(max int) ([]byte, error) {
	b, err := readFrame(s.c, max)
	if err != nil {
		return nil, err
	}
	mac := make([]byte, wire.MACSize)
	if _, err := io.ReadFull(s.c, mac); err != nil {
		return nil, err
	}
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], s.recvSeq)
	s.recvMAC.Reset()
	s.recvMAC.Write(seq[:])
	s.recvMAC.Write(b)
	if !hmac.Equal(s.recvMAC.Sum(nil), mac) {
		return nil, fmt.Errorf("attack: record %d from the node has a bad MAC", s.recvSeq)
	}
	s.recvSeq++
	return b[wire.HeaderSize:], nil
}

// sendRecord writes frames as one record: u32be n | frames | MAC, where
// the MAC is HMAC(key, seq || n || frames).
func (s *rawSession) sendRecord(frames ...*wire.Envelope) error {
	b := append(s.buf[:0], 0, 0, 0, 0)
	for _, f := range frames {
		b = wire.AppendFrame(b, f)
	}
	n := len(b) - wire.HeaderSize
	binary.BigEndian.PutUint32(b, uint32(n))
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], s.sendSeq)
	s.sendMAC.Reset()
	s.sendMAC.Write(seq[:])
	s.sendMAC.Write(b)
	b = s.sendMAC.Sum(b)
	s.buf = b
	s.sendSeq++
	if _, err := s.c.Write(b); err != nil {
		return fmt.Errorf("attack: write record %d: %w", s.sendSeq-1, err)
	}
	return nil
}

// drain reads and discards everything the node sends until the
// connection closes, and returns the number of bytes read. Run it on its
// own goroutine when the node's replies must not pile up in its buffers.
func (s *rawSession) drain() int64 {
	n, _ := io.Copy(io.Discard, bufio.NewReader(s.c))
	return n
}

// Close closes the connection.
func (s *rawSession) Close() error { return s.c.Close() }
