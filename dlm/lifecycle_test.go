package dlm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/dlm"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/replicated/replicatedtest"
)

func TestLifecycleSentinels(t *testing.T) {
	c, _ := form(t, clustertest.Config{Nodes: 1}, dlm.Config{}, true)
	ctx := clustertest.Context(t, 20*time.Second)
	d, err := dlm.New(c.Node(0), dlm.Config{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WLock(ctx, "id", "h", time.Second); !errors.Is(err, dlm.ErrNotStarted) || !errors.Is(err, notp.ErrNotStarted) {
		t.Fatalf("before Start: %v", err)
	}
	if err := d.Stop(ctx); !errors.Is(err, dlm.ErrNotStarted) {
		t.Fatalf("Stop before Start: %v", err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); !errors.Is(err, dlm.ErrAlreadyStarted) || !errors.Is(err, notp.ErrAlreadyStarted) {
		t.Fatalf("second Start: %v", err)
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := d.WUnlock(ctx, "id", "h"); !errors.Is(err, dlm.ErrClosed) || !errors.Is(err, notp.ErrClosed) {
		t.Fatalf("after Stop: %v", err)
	}
	if err := d.Start(ctx); !errors.Is(err, dlm.ErrClosed) {
		t.Fatalf("Start after Stop: %v", err)
	}
	for _, cfg := range []dlm.Config{{Quorum: 4, Replicas: 3}, {Retries: -2}, {MinWait: time.Second, MaxWait: time.Millisecond}, {DriftFactor: 0.7}} {
		if _, err := dlm.New(c.Node(0), cfg); !errors.Is(err, dlm.ErrInvalidConfig) {
			t.Errorf("config %+v: %v", cfg, err)
		}
	}
}

// Close stops a started DLM at once; a second Close and a Stop after it
// return nil, and the DLM then refuses work with ErrClosed. Close before
// Start reports ErrNotStarted, as Stop does.
func TestCloseStopsAtOnce(t *testing.T) {
	c, _ := form(t, clustertest.Config{Nodes: 1}, dlm.Config{}, true)
	ctx := clustertest.Context(t, 20*time.Second)
	d, err := dlm.New(c.Node(0), dlm.Config{Name: "closing", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); !errors.Is(err, dlm.ErrNotStarted) {
		t.Fatalf("Close before Start: %v", err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WLock(ctx, "id", "h", time.Minute); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s")
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatalf("Stop after Close: %v", err)
	}
	if _, err := d.WLock(ctx, "id", "h", time.Second); !errors.Is(err, dlm.ErrClosed) || !errors.Is(err, notp.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := d.Start(ctx); !errors.Is(err, dlm.ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}

// Stop keeps the locks and the fencing counter: a DLM started again on the
// same directory still refuses the held lock, and the next token is
// larger.
func TestStopKeepsLocksAndTokensForTheNextStart(t *testing.T) {
	c, ds := form(t, clustertest.Config{Nodes: 1, Faults: true}, dlm.Config{Retries: dlm.NoRetries}, false)
	ctx := clustertest.Context(t, 20*time.Second)
	l, err := ds.At(0).WLock(ctx, "id", "h", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c.Restart(0)
	if _, err := ds.At(0).WLock(ctx, "id", "other", time.Minute); !errors.Is(err, dlm.ErrRetriesExhausted) {
		t.Fatalf("lock held before the restart was granted again: %v", err)
	}
	if err := ds.At(0).WUnlock(ctx, "id", "h"); err != nil {
		t.Fatal(err)
	}
	l2, err := ds.At(0).WLock(ctx, "id", "other", time.Minute)
	if err != nil || l2.Token <= l.Token {
		t.Fatalf("token %d after %d: %v", l2.Token, l.Token, err)
	}
}

// A peer's malformed requests get an error reply and change nothing.
func TestMalformedPeerRequestsGetErrorReplies(t *testing.T) {
	c, ds := form(t, clustertest.Config{Nodes: 1}, dlm.Config{Retries: dlm.NoRetries}, true)
	ctx := clustertest.Context(t, 20*time.Second)
	k := c.Node(0).Kernel()
	replicatedtest.ExpectErrorReplies(ctx, t, k, "dlm", []replicatedtest.BadRequest{
		{Event: "wlock", Data: []byte("junk"), Code: dlm.CodeBadRequest},
		{Event: "wlock", Data: []byte{0x81, 0xa2, 'i', 'd', 0x05}, Code: dlm.CodeBadRequest},
		{Event: "rlock", Data: []byte{0x83, 0xa2, 'i', 'd', 0xa1, 'x', 0xa6, 'h', 'o', 'l', 'd', 'e', 'r', 0xa1, 'h', 0xa7, 't', 'i', 'm', 'e', 'o', 'u', 't', 0xff}, Code: dlm.CodeBadRequest},
		{Event: "commit", Data: []byte{0x82, 0xa2, 'i', 'd', 0xa1, 'x', 0xa6, 'h', 'o', 'l', 'd', 'e', 'r', 0xa1, 'h'}, Code: dlm.CodeBadRequest},
		{Event: "steal", Data: []byte{0x80}, Code: genserver.CodeUnknownEvent},
	})
	if _, err := ds.At(0).WLock(ctx, "x", "h", time.Second); err != nil {
		t.Fatalf("bad requests changed the lock: %v", err)
	}
}
