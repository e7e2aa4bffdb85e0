package conflux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/notp-go/notp"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/kernel"
)

// A kernel with another cookie can neither open a Raft stream nor inject
// bytes into one; the group goes on unharmed.
func TestRaftTransportNeedsCookie(t *testing.T) {
	g := newGroup(t, 1, nil)
	s := g.stores[0]
	if _, err := s.Perform(ctxT(t), "add", 1); err != nil {
		t.Fatal(err)
	}
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: "intruder", Host: "127.0.0.1"}, Cookie: "not the cluster cookie 0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	addr := g.nodes[0].Self().Addr()
	if _, err := k.DialAuth(ctxT(t), addr, Proto); !errors.Is(err, kernel.ErrAuthHandshake) {
		t.Fatalf("DialAuth with a wrong cookie = %v, want ErrAuthHandshake", err)
	}
	// Raw Raft traffic without the handshake: the node answers with its
	// hello at most and closes the connection.
	c, err := k.Dial(ctxT(t), addr, Proto)
	if err != nil {
		t.Fatal(err)
	}
	junk := append([]byte{1, 0}, bytes.Repeat([]byte{9}, 32)...)
	junk = append(junk, bytes.Repeat([]byte{0xAA}, 4096)...)
	c.Write(junk)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(c)
	c.Close()
	if len(got) > 34 {
		t.Fatalf("unauthenticated peer received %d bytes", len(got))
	}
	if _, err := s.Perform(ctxT(t), "add", 1); err != nil {
		t.Fatal(err)
	}
	if st := s.State(); st.N != 2 || len(st.Log) != 2 {
		t.Fatalf("state after the intrusion attempts = %+v, want two adds", st)
	}
}

// Closing a group's stream layer (its store stopped) closes the group's
// open connections, accepted and dialled, so a peer replicating to it
// sees the connection end at once rather than writing into one that
// nobody reads.
func TestStreamLayerCloseEndsItsConnections(t *testing.T) {
	newKernel := func(id string) *kernel.Kernel {
		return clustertest.StartKernel(t, kernel.Config{Node: notp.Node{ID: id, Host: "127.0.0.1"}, Cookie: "stream layer test cookie 0123456789"})
	}
	ka, kb := newKernel("a"), newKernel("b")
	la, err := joinMux(ka, "g")
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	lb, err := joinMux(kb, "g")
	if err != nil {
		t.Fatal(err)
	}
	dialled, err := la.Dial(raft.ServerAddress(kb.Self().Addr()), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer dialled.Close()
	accepted, err := lb.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	roundTrip := func(from, to net.Conn) {
		t.Helper()
		if _, err := from.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		to.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(to, b[:]); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip(dialled, accepted)
	lb.Close()
	dialled.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := dialled.Read(b[:]); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from the peer of a closed layer = %v, want the connection ended", err)
	}
	if _, err := lb.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
	}
}
