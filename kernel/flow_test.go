package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/wire"
)

// bigBody returns n bytes that reveal reordering or loss.
func bigBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i ^ i>>8 ^ i>>16)
	}
	return b
}

// streamer registers name on k: it answers each call with body through
// ReplyStream (on its own goroutine, as the doc asks) and reports
// ReplyStream's result on the returned channel.
func streamer(t *testing.T, k *Kernel, name string, body []byte, ctx func() (context.Context, context.CancelFunc)) <-chan error {
	t.Helper()
	res := make(chan error, 16)
	if err := k.Register(name, HandlerFunc(func(m Message) {
		go func() {
			c, cancel := ctx()
			defer cancel()
			res <- k.ReplyStream(c, m.From, bytes.NewReader(body))
		}()
	})); err != nil {
		t.Fatal(err)
	}
	return res
}

func background() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// buffered returns how many bytes a CallStream reader holds unread.
func buffered(r io.ReadCloser) int64 {
	sr := r.(*streamReader)
	sr.mu.Lock()
	defer sr.mu.Unlock()
	return sr.size
}

// A slow CallStream reader of a multi-MiB reply: the replier waits for
// credit (the caller never buffers more than a window), other calls on the
// same connection keep answering, and reading on delivers every byte.
func TestReplyStreamFlowControl(t *testing.T) {
	checkLeaks(t)
	for _, local := range []bool{false, true} {
		t.Run(fmt.Sprint("local=", local), func(t *testing.T) {
			a, b := pair(t, false, nil)
			if local {
				b = a
			}
			echo(t, b, "echo")
			body := bigBody(5 << 20)
			done := streamer(t, b, "big", body, background)
			r, err := a.CallStream(ctxT(t), b.Self(), "big", strings.NewReader("go"))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			first := make([]byte, 10)
			if _, err := io.ReadFull(r, first); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the sender to run out of credit", func() bool { return b.Stats().CreditWaits > 0 })
			window := int64(wire.StreamWindow * ChunkSize)
			for i := range 20 {
				if n := buffered(r); n > window {
					t.Fatalf("caller buffers %d bytes, window is %d", n, window)
				}
				if got, err := a.Call(ctxT(t), b.Self(), "echo", []byte(fmt.Sprint(i))); err != nil || string(got) != fmt.Sprint(i) {
					t.Fatalf("call behind a stalled stream = %q, %v", got, err)
				}
			}
			select {
			case err := <-done:
				t.Fatalf("ReplyStream returned %v while the reader is stalled", err)
			default:
			}
			rest, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(append(first, rest...), body) {
				t.Fatalf("stream = %d bytes, %v; want %d intact bytes", 10+len(rest), err, len(body))
			}
			if err := <-done; err != nil {
				t.Fatalf("ReplyStream = %v", err)
			}
		})
	}
}

// Closing the reader early stops the replier with ErrStreamCanceled; a
// caller that gives up (ctx) does too.
func TestReplyStreamCanceled(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, nil)
	done := streamer(t, b, "big", bigBody(8<<20), background)
	r, err := a.CallStream(ctxT(t), b.Self(), "big", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := <-done; !errors.Is(err, ErrStreamCanceled) {
		t.Fatalf("ReplyStream after Close = %v, want ErrStreamCanceled", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err = a.CallStream(ctx, b.Self(), "big", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Read(make([]byte, 1))
	cancel()
	if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel = %v", err)
	}
	if err := <-done; !errors.Is(err, ErrStreamCanceled) {
		t.Fatalf("ReplyStream after the caller's cancel = %v, want ErrStreamCanceled", err)
	}
	r.Close()
	// Call collects a streamed reply, granting as it goes.
	if got, err := a.Call(ctxT(t), b.Self(), "big", nil); err != nil || len(got) != 8<<20 {
		t.Fatalf("Call of an 8 MiB stream = %d bytes, %v", len(got), err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A replier out of credit waits only as long as its ctx; the caller's
// reader then ends with a CodeTimeout error after the buffered chunks.
func TestReplyStreamCreditTimeout(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, nil)
	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 200*time.Millisecond)
	}
	done := streamer(t, b, "big", bigBody(4<<20), short)
	r, err := a.CallStream(ctxT(t), b.Self(), "big", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReplyStream without credit = %v, want DeadlineExceeded", err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, &RemoteError{Code: CodeTimeout}) {
		t.Fatalf("reader after the replier gave up = %v", err)
	}
	// Nothing was read, so nothing was granted: exactly the first window.
	if len(got) != wire.StreamWindow*ChunkSize {
		t.Fatalf("got %d bytes before the error, want the %d-byte window", len(got), wire.StreamWindow*ChunkSize)
	}
}

// Credit messages that are malformed or name no stream are ignored: the
// connection stays up and a stream in progress is not disturbed.
func TestStrayCredit(t *testing.T) {
	b := startKernel(t, nil)
	echo(t, b, "echo")
	p, err := dialRaw(t, b, testCookie)
	if err != nil {
		t.Fatal(err)
	}
	var rec []byte
	for _, e := range []wire.Envelope{
		{Kind: wire.KindCredit, ID: "no-such-tag", Data: wire.AppendCredit(nil, 1<<31)},
		{Kind: wire.KindCredit, ID: "no-such-tag", Data: []byte{1, 2}},
		{Kind: wire.KindCredit, ID: "no-such-tag", Err: &wire.Error{Code: codeCanceled}},
		{Kind: wire.KindPing, Tag: "after"},
	} {
		rec = append(rec, frame(&e)...)
	}
	if _, err := p.c.Write(p.record(rec)); err != nil {
		t.Fatal(err)
	}
	// The pong proves the record was processed and the connection lives.
	var hdr [4]byte
	p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(p.c, hdr[:]); err != nil {
		t.Fatalf("no pong after stray credit: %v", err)
	}
	if st := b.Stats(); st.RejectedBadFrame+st.RejectedBadMAC != 0 || st.ActiveConnections != 1 {
		t.Fatalf("stray credit disturbed the connection: %+v", st)
	}
	b.cmu.Lock()
	n := len(b.credits)
	b.cmu.Unlock()
	if n != 0 {
		t.Fatalf("%d credit windows open, want 0", n)
	}
}
