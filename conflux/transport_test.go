package conflux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/notp-go/notp"
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
