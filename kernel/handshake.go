package kernel

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/cookiekey"
	"github.com/notp-go/notp/internal/wire"
)

// channelBindingLabel is the TLS exporter label of the hello's channel
// binding (RFC 5705 keying material). Append-only, like the key labels.
const channelBindingLabel = cookiekey.ChannelBinding

// helloResult is what a successful hello exchange establishes.
type helloResult struct {
	peer    notp.Node
	sendKey []byte   // record key of this side's direction; nil when insecure
	recvKey []byte   // record key of the peer's direction; nil when insecure
	key     *ringKey // the keyring key both sides proved; nil when insecure
	version uint64   // the protocol version the session speaks
}

// hello runs the hello exchange on c (see internal/wire's package doc for
// the bytes): the dialer sends its hello, the acceptor checks it and
// answers with its own; then, with a cookie, the dialer proves it knows
// the cookie and only after checking that proof does the acceptor prove
// it in turn. So a connection that has proved nothing receives nothing
// derived from the cookie: an attacker without the cookie cannot get a
// proof to guess the cookie from offline by dialing a node.
func (k *Kernel) hello(c net.Conn, dialer bool) (helloResult, error) {
	keys := k.keys.snapshot()
	secure := keys.primary() != nil
	h := wire.Hello{MinVersion: k.versions[0], Version: k.versions[1], Node: k.Self(), Nonce: make([]byte, wire.NonceSize)}
	if !secure {
		h.Flags |= wire.FlagInsecure
	}
	rand.Read(h.Nonce)
	mine := wire.AppendHello(nil, &h)
	if dialer {
		if _, err := c.Write(mine); err != nil {
			return helloResult{}, fmt.Errorf("write hello: %w", err)
		}
	}
	theirs, ph, err := readHello(c)
	if err != nil {
		return helloResult{}, err
	}
	if err := checkHello(&h, &ph, secure); err != nil {
		if !dialer && errors.Is(err, ErrProtocolVersion) {
			// The hello holds nothing secret: sent, it lets the dialer
			// name both ranges too instead of seeing the connection
			// close.
			c.Write(mine)
		}
		return helloResult{}, err
	}
	if !dialer {
		if _, err := c.Write(mine); err != nil {
			return helloResult{}, fmt.Errorf("write hello: %w", err)
		}
	}
	r := helloResult{peer: ph.Node, version: min(h.Version, ph.Version)}
	if !secure {
		return r, nil
	}
	t, err := transcript(c, channelBindingLabel, nil, dialer, mine, theirs)
	if err != nil {
		return helloResult{}, err
	}
	key, err := k.proofs(c, dialer, t, ph.Node.ID, keys)
	if err != nil {
		return helloResult{}, err
	}
	r.key = key
	d2a, a2d := deriveKey(key.master, labelKeyD2A, t), deriveKey(key.master, labelKeyA2D, t)
	if dialer {
		r.sendKey, r.recvKey = d2a, a2d
	} else {
		r.sendKey, r.recvKey = a2d, d2a
	}
	return r, nil
}

// readHello reads and decodes the peer's hello frame; the frame is
// returned as received, length prefix included.
func readHello(c net.Conn) ([]byte, wire.Hello, error) {
	var ph wire.Hello
	b, err := readSmallFrame(c, wire.MaxHelloSize)
	if err != nil {
		return nil, ph, fmt.Errorf("read hello: %w", err)
	}
	if err := wire.DecodeHello(b[wire.HeaderSize:], &ph); err != nil {
		return nil, ph, fmt.Errorf("read hello: %w", err)
	}
	return b, ph, nil
}

// checkHello checks the peer's hello ph against this side's h. A peer
// that echoes this side's nonce or claims this node's ID is reflecting
// the hello back (or is misconfigured): either way it is not a peer.
func checkHello(h, ph *wire.Hello, secure bool) error {
	if ph.Min() > h.Version || ph.Version < h.Min() {
		return fmt.Errorf("%w: peer %q speaks protocol versions [%d, %d], this node [%d, %d]; upgrade one of them (see the package doc's Protocol versions)",
			ErrProtocolVersion, ph.Node.ID, ph.Min(), ph.Version, h.Min(), h.Version)
	}
	if (ph.Flags&wire.FlagInsecure != 0) == secure {
		return errors.New("peer and this node disagree on insecure mode")
	}
	if err := ph.Node.Validate(); err != nil {
		return fmt.Errorf("peer's hello: %w", err)
	}
	if ph.Node.ID == h.Node.ID {
		return fmt.Errorf("peer claims this node's id %q", h.Node.ID)
	}
	if bytes.Equal(ph.Nonce, h.Nonce) {
		return fmt.Errorf("peer %q sent this node's own nonce back", ph.Node.ID)
	}
	return nil
}

// transcript returns what the proofs and session keys are bound to:
// prefix, the dialer's hello, the acceptor's, and, under TLS, 32 bytes of
// the TLS session's keying material exported under label. Both ends of
// one TLS session export the same bytes; a relay that terminates TLS
// towards each side runs two sessions with different material, so the
// proofs it forwards fail.
func transcript(c net.Conn, label string, prefix []byte, dialer bool, mine, theirs []byte) ([]byte, error) {
	t := append(make([]byte, 0, len(prefix)+len(mine)+len(theirs)+32), prefix...)
	if dialer {
		t = append(append(t, mine...), theirs...)
	} else {
		t = append(append(t, theirs...), mine...)
	}
	tc, ok := c.(*tls.Conn)
	if !ok {
		return t, nil
	}
	cs := tc.ConnectionState()
	ekm, err := cs.ExportKeyingMaterial(label, nil, 32)
	if err != nil {
		return nil, fmt.Errorf("tls channel binding: %w", err)
	}
	return append(t, ekm...), nil
}

// proofs exchanges the cookie proofs over transcript t and returns the
// key they were made with: the dialer writes its proof with its primary
// key and then checks the acceptor's with it; the acceptor checks the
// dialer's against each key of its keyring before it writes its own with
// the key that matched.
func (k *Kernel) proofs(c net.Conn, dialer bool, t []byte, peer string, keys *keySet) (*ringKey, error) {
	mine, theirs := labelProofDialer, labelProofAcceptor
	if !dialer {
		mine, theirs = theirs, mine
	}
	candidates := keys.keys
	if dialer {
		candidates = candidates[:1]
		if err := writeProof(c, candidates[0], mine, t); err != nil {
			return nil, err
		}
	}
	got, err := readSmallFrame(c, wire.MACSize)
	if err != nil {
		return nil, fmt.Errorf("read proof: %w", err)
	}
	var key *ringKey
	for _, cand := range candidates { // every key: no timing tells which matched
		if hmac.Equal(got[wire.HeaderSize:], deriveKey(cand.master, theirs, t)) && key == nil {
			key = cand
		}
	}
	if key == nil {
		what := "wrong cookie"
		if _, ok := c.(*tls.Conn); ok {
			what = "wrong cookie, or a relay between two TLS sessions,"
		}
		return nil, fmt.Errorf("%w: %s proof from %q", ErrBadSignature, what, peer)
	}
	if !dialer {
		return key, writeProof(c, key, mine, t)
	}
	return key, nil
}

// writeProof writes the proof frame HMAC(master, label || t).
func writeProof(c net.Conn, key *ringKey, label string, t []byte) error {
	p := binary.BigEndian.AppendUint32(make([]byte, 0, wire.HeaderSize+wire.MACSize), wire.MACSize)
	p = append(p, deriveKey(key.master, label, t)...)
	if _, err := c.Write(p); err != nil {
		return fmt.Errorf("write proof: %w", err)
	}
	return nil
}
