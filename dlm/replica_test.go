package dlm

import (
	"context"
	"encoding/binary"
	"sort"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/notp-go/notp/internal/replicated/replicatedtest"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/table"
)

func newTestReplica(t *testing.T, dir string) (*replica, *testutil.Clock, *table.Table) {
	t.Helper()
	return newTestReplicaAt(t, dir, time.UnixMilli(1_700_000_000_000))
}

// expect checks a replica operation's reply: no error, and OK is want.
func expect(t *testing.T, what string, want bool) func(reply, error) reply {
	return replicatedtest.Expect(t, what, want, func(r reply) bool { return r.OK })
}

func readHolders(r *replica, id string) []string {
	l := r.live(id)
	if l == nil {
		return nil
	}
	var hs []string
	for h := range l.read {
		hs = append(hs, h)
	}
	sort.Strings(hs)
	return hs
}

// stored returns the persisted write lock of id (field "") or read hold
// of holder.
func storedHold(t *testing.T, st *table.Table, id, holder string) (hold, bool) {
	t.Helper()
	var b []byte
	var err error
	if holder == "" {
		b, err = st.Get(id)
	} else {
		b, err = st.HGet(id, holder)
	}
	if err != nil {
		return hold{}, false
	}
	var h hold
	if err := msgpackcheck.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h, true
}

func TestReplicaRLockRefusedUnderWriteLock(t *testing.T) {
	r, _, _ := newTestReplica(t, "")
	expect(t, "wlock", true)(r.wlock("id", "w", time.Second))
	expect(t, "rlock", false)(r.rlock("id", "r", time.Second))
}

func TestReplicaRLockBySameHolderIsGrantedOnceWithoutExtendingTTL(t *testing.T) {
	r, clk, _ := newTestReplica(t, "")
	expect(t, "rlock", true)(r.rlock("id", "h", time.Second))
	clk.Advance(600 * time.Millisecond)
	expect(t, "rlock again", true)(r.rlock("id", "h", time.Second))
	if got := readHolders(r, "id"); len(got) != 1 {
		t.Fatalf("holders %v, want one", got)
	}
	clk.Advance(500 * time.Millisecond) // 1.1 s after the first grant
	if got := readHolders(r, "id"); got != nil {
		t.Fatalf("holders %v after the first TTL: the second rlock extended it", got)
	}
}

func TestReplicaRLockAddsHoldersAndPersistsStartAndTimeout(t *testing.T) {
	r, clk, st := newTestReplica(t, t.TempDir())
	expect(t, "rlock a", true)(r.rlock("id", "a", time.Second))
	expect(t, "rlock b", true)(r.rlock("id", "b", 2*time.Second))
	if got := readHolders(r, "id"); len(got) != 2 {
		t.Fatalf("holders %v", got)
	}
	h, ok := storedHold(t, st, "id", "b")
	if !ok || h.Start != clk.Now().UnixMilli() || h.Timeout != 2000 {
		t.Fatalf("persisted %+v %v", h, ok)
	}
}

func TestReplicaWLockRefusedOnAnyExistingLockEvenSameHolder(t *testing.T) {
	r, _, _ := newTestReplica(t, "")
	expect(t, "rlock", true)(r.rlock("r", "h", time.Second))
	expect(t, "wlock over rlock", false)(r.wlock("r", "h", time.Second))
	expect(t, "wlock", true)(r.wlock("w", "h", time.Second))
	expect(t, "wlock same holder", false)(r.wlock("w", "h", time.Second))
	expect(t, "wlock other holder", false)(r.wlock("w", "x", time.Second))
}

func TestReplicaWLockPersistsHolderStartTimeout(t *testing.T) {
	r, clk, st := newTestReplica(t, t.TempDir())
	expect(t, "wlock", true)(r.wlock("id", "h", 1500*time.Millisecond))
	h, ok := storedHold(t, st, "id", "")
	if !ok || h.Holder != "h" || h.Start != clk.Now().UnixMilli() || h.Timeout != 1500 {
		t.Fatalf("persisted %+v %v", h, ok)
	}
}

func TestReplicaRUnlock(t *testing.T) {
	r, _, st := newTestReplica(t, "")
	expect(t, "no lock", false)(r.runlock("id", "h"))
	expect(t, "wlock", true)(r.wlock("w", "h", time.Second))
	expect(t, "on a write lock", false)(r.runlock("w", "h"))
	expect(t, "rlock a", true)(r.rlock("id", "a", time.Second))
	expect(t, "rlock b", true)(r.rlock("id", "b", time.Second))
	expect(t, "unknown holder", false)(r.runlock("id", "c"))
	expect(t, "a", true)(r.runlock("id", "a"))
	if got := readHolders(r, "id"); len(got) != 1 || got[0] != "b" {
		t.Fatalf("holders %v", got)
	}
	expect(t, "b", true)(r.runlock("id", "b"))
	if _, ok := r.locks["id"]; ok {
		t.Fatal("lock kept after its last holder left")
	}
	if _, ok := storedHold(t, st, "id", "b"); ok {
		t.Fatal("holder kept on disk")
	}
	if _, ok := r.locks["w"]; !ok {
		t.Fatal("refused runlock removed the write lock")
	}
}

func TestReplicaWUnlock(t *testing.T) {
	r, _, st := newTestReplica(t, "")
	expect(t, "no lock", false)(r.wunlock("id", "h"))
	expect(t, "rlock", true)(r.rlock("r", "h", time.Second))
	expect(t, "on a read lock", false)(r.wunlock("r", "h"))
	expect(t, "wlock", true)(r.wlock("id", "h", time.Second))
	expect(t, "wrong holder", false)(r.wunlock("id", "x"))
	expect(t, "holder", true)(r.wunlock("id", "h"))
	if r.live("id") != nil {
		t.Fatal("lock kept")
	}
	if _, ok := storedHold(t, st, "id", ""); ok {
		t.Fatal("lock kept on disk")
	}
	if readHolders(r, "r") == nil {
		t.Fatal("refused wunlock removed the read lock")
	}
}

func TestReplicaReadExpiryRemovesHolderThenLock(t *testing.T) {
	r, clk, st := newTestReplica(t, t.TempDir())
	expect(t, "wlock", true)(r.wlock("w", "h", 10*time.Second))
	expect(t, "rlock a", true)(r.rlock("id", "a", time.Second))
	expect(t, "rlock b", true)(r.rlock("id", "b", 2*time.Second))
	clk.Advance(time.Second)
	r.sweep()
	if got := readHolders(r, "id"); len(got) != 1 || got[0] != "b" {
		t.Fatalf("after a's TTL: holders %v", got)
	}
	if _, ok := storedHold(t, st, "id", "a"); ok {
		t.Fatal("expired holder kept on disk")
	}
	clk.Advance(time.Second)
	r.sweep()
	if _, ok := r.locks["id"]; ok {
		t.Fatal("lock kept after every holder expired")
	}
	if r.live("w") == nil {
		t.Fatal("expiry of read holders removed another ID's write lock")
	}
}

func TestReplicaWriteExpiryRemovesOnlyThatLock(t *testing.T) {
	r, clk, st := newTestReplica(t, t.TempDir())
	expect(t, "wlock", true)(r.wlock("id", "h", time.Second))
	expect(t, "rlock", true)(r.rlock("r", "x", 5*time.Second))
	clk.Advance(999 * time.Millisecond)
	expect(t, "other holder before expiry", false)(r.wlock("id", "o", time.Second))
	expect(t, "wrong holder's unlock", false)(r.wunlock("id", "o"))
	clk.Advance(time.Millisecond)
	r.sweep()
	if _, ok := r.locks["id"]; ok {
		t.Fatal("write lock kept after its TTL")
	}
	if _, ok := storedHold(t, st, "id", ""); ok {
		t.Fatal("expired write lock kept on disk")
	}
	if readHolders(r, "r") == nil {
		t.Fatal("write expiry removed a read lock")
	}
	expect(t, "wlock after expiry", true)(r.wlock("id", "o", time.Second))
}

func TestReplicaCommitNeedsTheHolderAndRaisesTheCounterDurably(t *testing.T) {
	dir := t.TempDir()
	r, _, st := newTestReplica(t, dir)
	expect(t, "commit without lock", false)(r.commit("id", "h", 5))
	rep := expect(t, "wlock", true)(r.wlock("id", "h", time.Second))
	if rep.Token != 0 {
		t.Fatalf("fresh replica reports counter %d", rep.Token)
	}
	expect(t, "commit by another holder", false)(r.commit("id", "x", 5))
	rep = expect(t, "commit", true)(r.commit("id", "h", 5))
	if rep.Token != 5 || r.counter != 5 {
		t.Fatalf("counter %d/%d, want 5", rep.Token, r.counter)
	}
	expect(t, "commit lower", true)(r.commit("id", "h", 3))
	if r.counter != 5 {
		t.Fatalf("a lower token lowered the counter to %d", r.counter)
	}
	b, _ := st.Get(keyCounter)
	if binary.BigEndian.Uint64(b) != 5 {
		t.Fatalf("counter on disk %v", b)
	}
	expect(t, "wunlock", true)(r.wunlock("id", "h"))
	rep = expect(t, "next wlock", true)(r.wlock("id", "h", time.Second))
	if rep.Token != 5 {
		t.Fatalf("the counter did not outlive the lock: %d", rep.Token)
	}
}

func TestReplicaLoadRebuildsLocksWithRemainingTTL(t *testing.T) {
	dir := t.TempDir()
	r, clk, st := newTestReplica(t, dir)
	expect(t, "wlock", true)(r.wlock("w", "h", 10*time.Second))
	expect(t, "commit", true)(r.commit("w", "h", 7))
	expect(t, "rlock a", true)(r.rlock("r", "a", 10*time.Second))
	expect(t, "rlock b", true)(r.rlock("r", "b", 2*time.Second))
	expect(t, "rlock short", true)(r.rlock("gone", "c", time.Second))
	st.Close()

	r2, clk2, _ := newTestReplicaAt(t, dir, clk.Now().Add(1500*time.Millisecond))
	if r2.counter != 7 {
		t.Fatalf("counter %d, want 7", r2.counter)
	}
	if l := r2.live("w"); l == nil || l.write == nil || l.write.Holder != "h" || l.write.Token != 7 {
		t.Fatalf("write lock not restored: %+v", l)
	}
	if got := readHolders(r2, "r"); len(got) != 2 {
		t.Fatalf("read holders %v", got)
	}
	if r2.live("gone") != nil {
		t.Fatal("a lock that expired while the replica was down came back")
	}
	clk2.Advance(600 * time.Millisecond) // b had 500 ms left
	if got := readHolders(r2, "r"); len(got) != 1 || got[0] != "a" {
		t.Fatalf("after b's remaining TTL: %v", got)
	}
	clk2.Advance(8 * time.Second) // 10.1 s after the grants
	if r2.live("w") != nil {
		t.Fatal("restored write lock outlived its TTL")
	}
}

func newTestReplicaAt(t *testing.T, dir string, now time.Time) (*replica, *testutil.Clock, *table.Table) {
	t.Helper()
	st := replicatedtest.Table(t, dir, "dlm")
	clk := testutil.NewClock(now)
	cfg := Config{Now: clk.Now}
	cfg.setDefaults()
	r := newReplica(st, &cfg)
	if err := r.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r, clk, st
}

func TestReplicaLoadWithoutPersistenceIsEmpty(t *testing.T) {
	r, _, _ := newTestReplica(t, "")
	if len(r.locks) != 0 || r.counter != 0 {
		t.Fatal("in-memory replica starts with state")
	}
}

func TestReplicaLoadErrorPropagatesAndJunkIsDropped(t *testing.T) {
	dir := t.TempDir()
	st, _ := table.Open(table.Config{Dir: dir, Name: "dlm"})
	st.Set(keyCounter, []byte{1, 2, 3})
	cfg := Config{}
	cfg.setDefaults()
	if err := newReplica(st, &cfg).load(context.Background()); err == nil {
		t.Fatal("a corrupt counter loaded without error")
	}
	st.Del(keyCounter)
	st.Set("id", []byte("junk"))
	st.SSet("a set", "x")
	st.HSet("r", "h", []byte{0x80})
	st.Set("nobody", encode(&hold{Start: time.Now().UnixMilli(), Timeout: 1000}))
	r := newReplica(st, &cfg)
	if err := r.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(r.locks) != 0 || st.Len() != 0 {
		t.Fatalf("junk loaded: %d locks, %d keys left", len(r.locks), st.Len())
	}
	st.Close()
}

func TestReplicaLoadErrorFromAClosedTablePropagates(t *testing.T) {
	cfg := Config{}
	cfg.setDefaults()
	if err := newReplica(replicatedtest.ClosedTable(t, "dlm"), &cfg).load(context.Background()); err == nil {
		t.Fatal("load from a closed table succeeded")
	}
}

func TestReplicaBudgets(t *testing.T) {
	st, _ := table.Open(table.Config{})
	cfg := Config{MaxLocks: 2, MaxHolders: 2}
	cfg.setDefaults()
	r := newReplica(st, &cfg)
	expect(t, "a", true)(r.rlock("a", "1", time.Second))
	expect(t, "a", true)(r.rlock("a", "2", time.Second))
	if _, err := r.rlock("a", "3", time.Second); err == nil {
		t.Fatal("holder past MaxHolders granted")
	}
	expect(t, "b", true)(r.wlock("b", "1", time.Second))
	if _, err := r.wlock("c", "1", time.Second); err == nil {
		t.Fatal("lock past MaxLocks granted")
	}
	if len(r.locks) != 2 || len(r.locks["a"].read) != 2 {
		t.Fatal("a refused request changed state")
	}
}
