package kernel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/wire"
)

// Close fails a call made from inside a handler, whose connection
// goroutine Close waits for: Close must not wait for the call's ctx.
func TestCloseFailsCallInsideHandler(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, true, nil)
	held := make(chan struct{}, 1)
	b.Register("hold", HandlerFunc(func(Message) { held <- struct{}{} }))
	errs := make(chan error, 1)
	a.Register("outer", HandlerFunc(func(Message) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := a.Call(ctx, b.Self(), "hold", nil)
		errs <- err
	}))
	if err := b.Cast(a.Self(), "outer", nil); err != nil {
		t.Fatal(err)
	}
	<-held
	closed := make(chan struct{})
	go func() { a.Close(); close(closed) }()
	select {
	case err := <-errs:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("call inside handler after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not fail the call inside the handler")
	}
	<-closed
	if err := a.Ping(ctxT(t), b.Self()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
}

// Replies to records that arrived together leave in one record; a record
// only partly arrived does not hold back the replies to those before it.
func TestRepliesCoalesceAcrossBufferedRecords(t *testing.T) {
	checkLeaks(t)
	k := startKernel(t, nil)
	echo(t, k, "echo")
	p, err := dialRaw(t, k, testCookie)
	if err != nil {
		t.Fatal(err)
	}
	call := func(tag string) []byte {
		return p.record(frame(&wire.Envelope{Kind: wire.KindMsg, ID: "echo", Tag: tag, Data: []byte(tag)}))
	}
	var recvSeq uint64
	readReplies := func() []string {
		t.Helper()
		p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var hdr [wire.HeaderSize]byte
		if _, err := io.ReadFull(p.c, hdr[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, int(binary.BigEndian.Uint32(hdr[:]))+wire.MACSize)
		if _, err := io.ReadFull(p.c, body); err != nil {
			t.Fatal(err)
		}
		n := len(body) - wire.MACSize
		if want := appendMAC(p.s.recvMAC, nil, recvSeq, hdr[:], body[:n]); !bytes.Equal(want, body[n:]) {
			t.Fatal("reply record with a bad MAC")
		}
		recvSeq++
		var tags []string
		err := wire.SplitFrames(body[:n], wire.MaxHelloSize, func(f []byte) error {
			var e wire.Envelope
			if err := wire.DecodeEnvelope(f, &e); err != nil {
				return err
			}
			if e.Kind != wire.KindReply || string(e.Data) != e.ID {
				t.Errorf("unexpected frame %+v", e)
			}
			tags = append(tags, e.ID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return tags
	}
	first := append(call("t1"), call("t2")...) // MAC sequence order
	third := call("t3")
	batch := append(first, third[:5]...)
	if _, err := p.c.Write(batch); err != nil {
		t.Fatal(err)
	}
	if got := readReplies(); !slices.Equal(got, []string{"t1", "t2"}) {
		t.Fatalf("first reply record holds %q, want the replies to both whole records", got)
	}
	if _, err := p.c.Write(third[5:]); err != nil {
		t.Fatal(err)
	}
	if got := readReplies(); !slices.Equal(got, []string{"t3"}) {
		t.Fatalf("second reply record holds %q", got)
	}
}
