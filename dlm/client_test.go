package dlm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/dlm/internal/wire"
	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/notp-go/notp/internal/replicated"
	"github.com/notp-go/notp/internal/replicated/payload"
	"github.com/notp-go/notp/internal/testutil"
)

// fakeRing is a fixed preference list with a set of down nodes.
type fakeRing struct {
	nodes []notp.Node
	dead  map[string]bool
}

func (f *fakeRing) replicas(string, int) []notp.Node { return f.nodes }
func (f *fakeRing) down(id string) bool              { return f.dead[id] }

// sent is one call or cast the fake saw.
type sent struct {
	node  string
	event string
	req   request
	cast  bool
}

// fakeRPC answers each call with fn and records calls and casts.
type fakeRPC struct {
	mu  sync.Mutex
	log []sent
	fn  func(node, event string, req request) (reply, error)
}

func (f *fakeRPC) record(node notp.Node, event string, data []byte, cast bool) request {
	var r request
	if err := msgpackcheck.Unmarshal(data, &r); err != nil {
		panic(err)
	}
	f.mu.Lock()
	f.log = append(f.log, sent{node.ID, event, r, cast})
	f.mu.Unlock()
	return r
}

func (f *fakeRPC) call(ctx context.Context, node notp.Node, event string, data []byte) ([]byte, error) {
	r := f.record(node, event, data, false)
	rep, err := f.fn(node.ID, event, r)
	if err != nil {
		return nil, err
	}
	return encode(rep), nil
}

func (f *fakeRPC) cast(node notp.Node, event string, data []byte) error {
	f.record(node, event, data, true)
	return nil
}

func (f *fakeRPC) sent(event string, cast bool) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, s := range f.log {
		if s.event == event && s.cast == cast {
			ids = append(ids, s.node)
		}
	}
	slices.Sort(ids)
	return ids
}

var abc = []notp.Node{{ID: "a", Host: "h", Port: 1}, {ID: "b", Host: "h", Port: 2}, {ID: "c", Host: "h", Port: 3}}

func testClient(cfg Config, ring ringView, rpc caller) *DLM {
	cfg.setDefaults()
	return &DLM{cfg: cfg, ring: ring, rpc: rpc, base: replicated.Started(lifecycle), jitter: replicated.NewJitterSeeded(1, 2)}
}

// grantAll grants every request; wlock reports counter tok[node].
func grantAll(tok map[string]uint64) func(string, string, request) (reply, error) {
	return func(node, ev string, r request) (reply, error) {
		return reply{OK: true, Token: tok[node]}, nil
	}
}

func TestRLockSuccessAsksThePreferenceListWithIDHolderTimeout(t *testing.T) {
	rpc := &fakeRPC{fn: grantAll(nil)}
	d := testClient(Config{}, &fakeRing{nodes: abc}, rpc)
	l, err := d.RLock(context.Background(), "id", "me", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Nodes) < 2 || l.Token != 0 || l.ID != "id" || l.Holder != "me" {
		t.Fatalf("lock %+v", l)
	}
	if l.Validity <= 0 || l.Validity > time.Second-12*time.Millisecond {
		t.Fatalf("validity %v ignores the drift margin", l.Validity)
	}
	for _, s := range rpc.log {
		if s.event != wire.RLock || s.req != (request{ID: "id", Holder: "me", Timeout: 1000}) {
			t.Fatalf("sent %+v", s)
		}
	}
	if got := rpc.sent(wire.RLock, false); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("asked %v", got)
	}
}

func TestLockRequestErrorIsAFailedVoteNotAnAbort(t *testing.T) {
	for _, write := range []bool{false, true} {
		rpc := &fakeRPC{fn: func(node, ev string, r request) (reply, error) {
			if node == "c" {
				return reply{}, errors.New("boom")
			}
			return reply{OK: true}, nil
		}}
		d := testClient(Config{Retries: NoRetries}, &fakeRing{nodes: abc}, rpc)
		l, err := d.acquire(context.Background(), write, "id", "me", time.Second)
		if err != nil {
			t.Fatalf("write=%v: one failing replica of three aborted the lock: %v", write, err)
		}
		if len(l.Nodes) != 2 {
			t.Fatalf("granted by %v", l.Nodes)
		}
	}
}

func TestLockQuorumMissedWithoutRetriesFailsAndReleasesEverywhere(t *testing.T) {
	for _, write := range []bool{false, true} {
		rpc := &fakeRPC{fn: func(node, ev string, r request) (reply, error) {
			if node == "a" {
				return reply{OK: true}, nil
			}
			if node == "b" {
				return reply{}, errors.New("timeout")
			}
			return reply{OK: false}, nil
		}}
		d := testClient(Config{Retries: NoRetries}, &fakeRing{nodes: abc}, rpc)
		_, err := d.acquire(context.Background(), write, "id", "me", time.Second)
		var ae *AcquireError
		if !errors.As(err, &ae) || !errors.Is(err, ErrRetriesExhausted) || ae.Attempts != 1 {
			t.Fatalf("write=%v: err %v", write, err)
		}
		kind, unlock := "rlock", wire.RUnlock
		if write {
			kind, unlock = "wlock", wire.WUnlock
		}
		want := fmt.Sprintf("dlm: Failed to acquire %s, retry count exhausted.", kind)
		if got := err.Error(); len(got) < len(want) || got[:len(want)] != want {
			t.Fatalf("error text %q", got)
		}
		if got := rpc.sent(unlock, true); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Fatalf("released on %v, want every replica", got)
		}
	}
}

func TestLockTTLExceededFailsEvenIfGranted(t *testing.T) {
	for _, write := range []bool{false, true} {
		clk := testutil.NewClock(time.Unix(0, 0))
		var mu sync.Mutex
		rpc := &fakeRPC{fn: func(node, ev string, r request) (reply, error) {
			mu.Lock()
			clk.Advance(400 * time.Millisecond)
			mu.Unlock()
			return reply{OK: true}, nil
		}}
		d := testClient(Config{Retries: NoRetries, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clk.Now() }},
			&fakeRing{nodes: abc}, rpc)
		if _, err := d.acquire(context.Background(), write, "id", "me", time.Second); !errors.Is(err, ErrRetriesExhausted) {
			t.Fatalf("write=%v: granted after the TTL ran out: %v", write, err)
		}
		unlock := wire.RUnlock
		if write {
			unlock = wire.WUnlock
		}
		if len(rpc.sent(unlock, true)) != 3 {
			t.Fatalf("write=%v: grants not released", write)
		}
	}
}

func TestLockFailsThenSucceedsOnRetry(t *testing.T) {
	for _, write := range []bool{false, true} {
		var mu sync.Mutex
		tries := map[string]int{}
		rpc := &fakeRPC{fn: func(node, ev string, r request) (reply, error) {
			mu.Lock()
			defer mu.Unlock()
			if ev == wire.Commit {
				return reply{OK: true, Token: r.Token}, nil
			}
			tries[node]++
			return reply{OK: tries[node] > 2}, nil
		}}
		d := testClient(Config{Retries: 5, MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond}, &fakeRing{nodes: abc}, rpc)
		l, err := d.acquire(context.Background(), write, "id", "me", time.Second)
		if err != nil || len(l.Nodes) < 2 {
			t.Fatalf("write=%v: %v %+v", write, err, l)
		}
		if tries["a"] != 3 {
			t.Fatalf("write=%v: %d attempts, want 3", write, tries["a"])
		}
	}
}

func TestWLockTokenIsMaxReportedPlusOneRecordedOnTheGrantingQuorum(t *testing.T) {
	rpc := &fakeRPC{fn: func(node, ev string, r request) (reply, error) {
		switch {
		case node == "c":
			return reply{OK: false, Token: 99}, nil // refused: its counter is not used
		case ev == wire.Commit:
			return reply{OK: true, Token: r.Token}, nil
		}
		return reply{OK: true, Token: map[string]uint64{"a": 4, "b": 9}[node]}, nil
	}}
	d := testClient(Config{Now: epoch}, &fakeRing{nodes: abc}, rpc)
	l, err := d.WLock(context.Background(), "id", "me", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if l.Token != 10 {
		t.Fatalf("token %d, want 10", l.Token)
	}
	if got := rpc.sent(wire.Commit, false); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("commit sent to %v, want the granting replicas", got)
	}
}

// epoch is a clock stopped at 1970, where the clock floor of a token is
// 0 and a token is the largest counter reported plus one.
func epoch() time.Time { return time.Unix(0, 0) }

func TestWLockTokenFollowsTheClockOnReplicasThatNeverSawTheID(t *testing.T) {
	// Two clients lock the same ID on disjoint replica sets, as after a
	// ring change that moved the ID: the second set reports counters far
	// below the first's tokens, yet the second token is larger.
	var mu sync.Mutex
	now := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	commitOK := func(counter uint64) func(string, string, request) (reply, error) {
		return func(_, ev string, r request) (reply, error) {
			if ev == wire.Commit {
				return reply{OK: true, Token: r.Token}, nil
			}
			return reply{OK: true, Token: counter}, nil
		}
	}
	first := testClient(Config{Now: clock}, &fakeRing{nodes: abc}, &fakeRPC{fn: commitOK(7)})
	l1, err := first.WLock(context.Background(), "id", "x", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(now.UnixMicro()); l1.Token != want {
		t.Fatalf("first token %d, want the clock's %d", l1.Token, want)
	}
	mu.Lock()
	now = now.Add(time.Millisecond)
	mu.Unlock()
	def := []notp.Node{{ID: "d", Host: "h", Port: 4}, {ID: "e", Host: "h", Port: 5}, {ID: "f", Host: "h", Port: 6}}
	second := testClient(Config{Now: clock}, &fakeRing{nodes: def}, &fakeRPC{fn: commitOK(3)})
	l2, err := second.WLock(context.Background(), "id", "y", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Token <= l1.Token {
		t.Fatalf("token %d on the new replicas after %d", l2.Token, l1.Token)
	}
	// A counter ahead of the clock still wins: max reported + 1.
	ahead := uint64(now.UnixMicro()) + 500
	third := testClient(Config{Now: clock}, &fakeRing{nodes: abc}, &fakeRPC{fn: commitOK(ahead)})
	l3, err := third.WLock(context.Background(), "id", "z", time.Second)
	if err != nil || l3.Token != ahead+1 {
		t.Fatalf("token %d, want %d: %v", l3.Token, ahead+1, err)
	}
}

// The clock floor is read once the quorum granted, just before the
// commit: a clock that moves while the replicas vote gives a token at the
// later time, while Validity still counts from the attempt's start.
func TestWLockClockFloorIsReadAfterTheQuorumGranted(t *testing.T) {
	var mu sync.Mutex
	start := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	const voting = 5 * time.Millisecond
	now := start
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var committed uint64
	rpc := &fakeRPC{fn: func(_, ev string, r request) (reply, error) {
		mu.Lock()
		defer mu.Unlock()
		switch ev {
		case wire.WLock:
			now = start.Add(voting) // the replicas take this long to grant
			return reply{OK: true, Token: 7}, nil
		case wire.Commit:
			committed = r.Token
			return reply{OK: true, Token: r.Token}, nil
		}
		return reply{}, nil
	}}
	d := testClient(Config{Now: clock}, &fakeRing{nodes: abc}, rpc)
	const ttl = time.Second
	l, err := d.WLock(context.Background(), "id", "me", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(start.Add(voting).UnixMicro()); l.Token != want || committed != want {
		t.Fatalf("token %d, committed %d, want the time after the grants %d (the start gives %d)",
			l.Token, committed, want, start.UnixMicro())
	}
	if want := ttl - voting - d.drift(ttl); l.Validity != want {
		t.Fatalf("validity %v, want %v from the attempt's start", l.Validity, want)
	}
}

func TestWLockFailsWhenTheTokenIsNotRecordedOnAQuorum(t *testing.T) {
	rpc := &fakeRPC{fn: func(node, ev string, r request) (reply, error) {
		if ev == wire.Commit && node != "a" {
			return reply{OK: false}, nil // lock expired there meanwhile
		}
		return reply{OK: true}, nil
	}}
	d := testClient(Config{Retries: NoRetries}, &fakeRing{nodes: abc}, rpc)
	if _, err := d.WLock(context.Background(), "id", "me", time.Second); !errors.Is(err, ErrRetriesExhausted) {
		t.Fatalf("err %v", err)
	}
	if len(rpc.sent(wire.WUnlock, true)) != 3 {
		t.Fatal("grants not released")
	}
}

func TestDownReplicaIsNotAsked(t *testing.T) {
	rpc := &fakeRPC{fn: grantAll(nil)}
	d := testClient(Config{}, &fakeRing{nodes: abc, dead: map[string]bool{"b": true}}, rpc)
	l, err := d.RLock(context.Background(), "id", "me", time.Second)
	if err != nil || len(l.Nodes) != 2 {
		t.Fatalf("%v %+v", err, l)
	}
	if slices.Contains(rpc.sent(wire.RLock, false), "b") {
		t.Fatal("a down replica was asked")
	}
}

func TestAttemptIsBoundedByCtx(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	d := testClient(Config{}, &fakeRing{nodes: abc}, hangRPC{block})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := d.WLock(ctx, "id", "me", time.Minute)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("ctx did not bound the attempt")
	}
}

// hangRPC calls wait for ctx.
type hangRPC struct{ block chan struct{} }

func (h hangRPC) call(ctx context.Context, _ notp.Node, _ string, _ []byte) ([]byte, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-h.block:
		return nil, errors.New("closed")
	}
}
func (hangRPC) cast(notp.Node, string, []byte) error { return nil }

func TestUnlockSendsIDAndHolderAndNeedsAQuorumOfAnswers(t *testing.T) {
	for _, ev := range []string{wire.RUnlock, wire.WUnlock} {
		rpc := &fakeRPC{fn: func(node, _ string, r request) (reply, error) {
			return reply{OK: node == "a"}, nil // not-ok answers still count
		}}
		d := testClient(Config{}, &fakeRing{nodes: abc}, rpc)
		if err := d.unlock(context.Background(), ev, "id", "me"); err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
		for _, s := range rpc.log {
			if s.req != (request{ID: "id", Holder: "me"}) || s.event != ev {
				t.Fatalf("sent %+v", s)
			}
		}
		rpc.fn = func(node, _ string, r request) (reply, error) {
			if node == "a" {
				return reply{OK: true}, nil
			}
			return reply{}, errors.New("unreachable")
		}
		if err := d.unlock(context.Background(), ev, "id", "me"); !errors.Is(err, ErrNoQuorum) {
			t.Fatalf("%s: unlock answered by 1 of 3: %v", ev, err)
		}
	}
}

func TestUnlockAsyncBroadcasts(t *testing.T) {
	rpc := &fakeRPC{fn: grantAll(nil)}
	d := testClient(Config{}, &fakeRing{nodes: abc}, rpc)
	if err := d.RUnlockAsync("id", "me"); err != nil {
		t.Fatal(err)
	}
	if err := d.WUnlockAsync("id", "me"); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []string{wire.RUnlock, wire.WUnlock} {
		if got := rpc.sent(ev, true); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Fatalf("%s cast to %v", ev, got)
		}
	}
}

func TestQuorumOfReplicaCounts(t *testing.T) {
	d := testClient(Config{}, nil, nil)
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3} {
		if got := d.quorum(n); got != want {
			t.Errorf("quorum(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestTallyPicksGrantingNodesByIndex(t *testing.T) {
	votes := []vote{{node: abc[0], rep: reply{OK: true, Token: 3}}, {node: abc[1], err: errors.New("x")},
		{node: abc[2], rep: reply{OK: false, Token: 8}}}
	granted, maxTok, errs := tally(votes)
	if len(granted) != 1 || granted[0].ID != "a" || maxTok != 3 || len(errs) != 1 {
		t.Fatalf("%v %d %v", granted, maxTok, errs)
	}
}

func TestInvalidArgumentsSendNothing(t *testing.T) {
	rpc := &fakeRPC{fn: grantAll(nil)}
	d := testClient(Config{}, &fakeRing{nodes: abc}, rpc)
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"empty id":     func() error { _, err := d.WLock(ctx, "", "h", time.Second); return err },
		"empty holder": func() error { _, err := d.RLock(ctx, "id", "", time.Second); return err },
		"zero ttl":     func() error { _, err := d.WLock(ctx, "id", "h", 0); return err },
		"huge ttl":     func() error { _, err := d.WLock(ctx, "id", "h", MaxTTL+time.Second); return err },
		"long id":      func() error { _, err := d.WLock(ctx, string(make([]byte, MaxIDLen+1)), "h", time.Second); return err },
		"nul holder":   func() error { return d.WUnlock(ctx, "id", "a\x00b") },
	} {
		if err := call(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if len(rpc.log) != 0 {
		t.Fatalf("sent %v", rpc.log)
	}
}

// An invalid argument's error wraps ErrInvalidArgument and, with %w, the
// validator's own error, so both are in the chain.
func TestInvalidArgumentsKeepTheCause(t *testing.T) {
	d := testClient(Config{}, &fakeRing{nodes: abc}, &fakeRPC{fn: grantAll(nil)})
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		call  func() error
		cause error
	}{
		{"empty id", func() error { _, err := d.WLock(ctx, "", "h", time.Second); return err }, payload.ValidName("id", "")},
		{"nul holder", func() error { return d.WUnlock(ctx, "id", "a\x00b") }, payload.ValidName("holder", "a\x00b")},
		{"zero ttl", func() error { _, err := d.RLock(ctx, "id", "h", 0); return err }, validTTL(0)},
	} {
		err := c.call()
		if !errors.Is(err, ErrInvalidArgument) || !chainHas(err, c.cause.Error()) {
			t.Errorf("%s: err %v, want ErrInvalidArgument wrapping %q", c.name, err, c.cause)
		}
	}
}

// chainHas reports whether err's chain (both Unwrap forms) holds an error
// other than err itself whose text is text.
func chainHas(err error, text string) bool {
	var walk func(e error, top bool) bool
	walk = func(e error, top bool) bool {
		if e == nil {
			return false
		}
		if !top && e.Error() == text {
			return true
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			return walk(u.Unwrap(), false)
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				if walk(c, false) {
					return true
				}
			}
		}
		return false
	}
	return walk(err, true)
}

// partHang answers from a and b and hangs on c until ctx ends.
type partHang struct{ fakeRPC }

func (p *partHang) call(ctx context.Context, node notp.Node, event string, data []byte) ([]byte, error) {
	if node.ID == "c" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return p.fakeRPC.call(ctx, node, event, data)
}

func TestHangingReplicaDoesNotDelayAQuorum(t *testing.T) {
	rpc := &partHang{fakeRPC{fn: func(_, ev string, r request) (reply, error) { return reply{OK: true, Token: r.Token}, nil }}}
	d := testClient(Config{Now: epoch}, &fakeRing{nodes: abc}, rpc)
	start := time.Now()
	l, err := d.WLock(context.Background(), "id", "me", 10*time.Second)
	if err != nil || l.Token != 1 {
		t.Fatalf("%v %+v", err, l)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v: the lock waited for the hanging replica", el)
	}
}
