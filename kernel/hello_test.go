package kernel

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/wire"
)

// helloFrame is a hello frame with the given fields, encoded as the wire
// package does (whatever their validity).
func helloFrame(version, flags uint64, node notp.Node, nonce []byte) []byte {
	return wire.AppendHello(nil, &wire.Hello{Version: version, Flags: flags, Node: node, Nonce: nonce})
}

// frameOf is a hello-sized frame: a u32be length and body.
func frameOf(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// acceptHello runs the acceptor's side of the hello on one end of a pipe
// while the other writes in and, when proof is not nil, reads the
// acceptor's hello and writes proof. It returns the acceptor's error and
// what it wrote before giving up.
func acceptHello(t *testing.T, k *Kernel, in, proof []byte) (error, []byte) {
	t.Helper()
	c, peer := net.Pipe()
	wrote := make(chan []byte, 1)
	go func() {
		if len(in) > 0 {
			peer.Write(in)
		}
		var got []byte
		if proof != nil {
			got, _ = readSmallFrame(peer, wire.MaxHelloSize)
			peer.Write(proof)
		}
		rest, _ := io.ReadAll(peer)
		wrote <- append(got, rest...)
	}()
	deadline := time.Now().Add(time.Second)
	c.SetDeadline(deadline)
	_, err := k.hello(c, false)
	c.Close()
	return err, <-wrote
}

// Every malformed, oversized, unfinished or mismatched hello is refused
// with an error saying why (an unfinished one at the handshake deadline),
// and the acceptor answers it with nothing: its own hello goes only to a
// dialer whose hello checked out.
func TestHelloEdgeCases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		secure, err := New(n.config(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		insecure, err := New(n.config(t, func(c *Config) { c.Cookie, c.Insecure = "", true }))
		if err != nil {
			t.Fatal(err)
		}
		peer := notp.Node{ID: "peer", Host: "127.0.0.1", Port: 9}
		nonce := make([]byte, wire.NonceSize)
		nonce[0] = 1
		good := helloFrame(wire.Version, 0, peer, nonce)
		huge := binary.BigEndian.AppendUint32(nil, wire.MaxHelloSize+1)
		tests := []struct {
			name    string
			k       *Kernel
			in      []byte
			wantErr error  // errors.Is, when set
			want    string // in the message
		}{
			{"over MaxHelloSize", secure, huge, wire.ErrTooLarge, "handshake frame"},
			{"4 GiB declared", secure, []byte{0xff, 0xff, 0xff, 0xff}, wire.ErrTooLarge, ""},
			{"empty frame", secure, frameOf(nil), wire.ErrMalformed, ""},
			{"not msgpack", secure, frameOf([]byte("GET / HTTP/1.1")), wire.ErrMalformed, ""},
			{"truncated", secure, good[:len(good)-3], os.ErrDeadlineExceeded, "read hello"},
			{"header only", secure, good[:2], os.ErrDeadlineExceeded, "read hello"},
			{"trailing byte", secure, frameOf(append(good[wire.HeaderSize:], 0)), wire.ErrMalformed, "trailing"},
			{"short nonce", secure, helloFrame(wire.Version, 0, peer, nonce[:31]), wire.ErrMalformed, "nonce"},
			{"no id", secure, helloFrame(wire.Version, 0, notp.Node{Host: "h", Port: 1}, nonce), wire.ErrMalformed, "node id"},
			{"newer version", secure, helloFrame(wire.Version+1, 0, peer, nonce), nil, "version 3"},
			{"insecure dialer", secure, helloFrame(wire.Version, wire.FlagInsecure, peer, nonce), nil, "insecure mode"},
			{"secure dialer", insecure, good, nil, "insecure mode"},
			{"invalid node", secure, helloFrame(wire.Version, 0, notp.Node{ID: "p q", Host: "h", Port: 1}, nonce), nil, "peer's hello"},
			{"silence", secure, nil, os.ErrDeadlineExceeded, "read hello"},
		}
		for _, tt := range tests {
			err, wrote := acceptHello(t, tt.k, tt.in, nil)
			if err == nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: hello = %v, want %v mentioning %q", tt.name, err, tt.wantErr, tt.want)
			}
			if len(wrote) != 0 {
				t.Errorf("%s: the acceptor answered with %d bytes", tt.name, len(wrote))
			}
		}
		// A good hello is answered with the acceptor's own (the insecure
		// kernel has no proofs to exchange after it).
		err, wrote := acceptHello(t, insecure, helloFrame(wire.Version, wire.FlagInsecure, peer, nonce), nil)
		if err != nil || len(wrote) == 0 {
			t.Fatalf("good hello: %v, %d bytes answered", err, len(wrote))
		}
		var h wire.Hello
		if err := wire.DecodeHello(wrote[wire.HeaderSize:], &h); err != nil || h.Node != insecure.Self() || h.Flags != wire.FlagInsecure {
			t.Fatalf("acceptor's hello = %+v, %v", h, err)
		}
	})
}

// A dialer's proof frame of the wrong size is refused: over 32 bytes
// before it is read, under it as a wrong proof. Either way the acceptor
// sends its hello and no proof.
func TestHelloProofSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k, err := New(newMemNet().config(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		peer := notp.Node{ID: "peer", Host: "127.0.0.1", Port: 9}
		nonce := make([]byte, wire.NonceSize)
		for _, tt := range []struct {
			proof   []byte
			wantErr error
		}{
			{binary.BigEndian.AppendUint32(nil, wire.MACSize+1), wire.ErrTooLarge},
			{frameOf(make([]byte, wire.MACSize-1)), ErrBadSignature},
			{frameOf(nil), ErrBadSignature},
		} {
			err, wrote := acceptHello(t, k, helloFrame(wire.Version, 0, peer, nonce), tt.proof)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("proof %x: %v, want %v", tt.proof, err, tt.wantErr)
			}
			var h wire.Hello
			if len(wrote) < wire.HeaderSize || wire.DecodeHello(wrote[wire.HeaderSize:], &h) != nil ||
				len(wrote) != wire.HeaderSize+int(binary.BigEndian.Uint32(wrote)) {
				t.Errorf("proof %x: the acceptor wrote %d bytes, want its hello alone", tt.proof, len(wrote))
			}
		}
	})
}
