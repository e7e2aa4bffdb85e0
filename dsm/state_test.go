package dsm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/replicated/replicatedtest"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/table"
	"github.com/vmihailenco/msgpack/v5"
)

func newTestOwner(t *testing.T, dir string, clk *testutil.Clock) (*owner, *table.Table) {
	t.Helper()
	st := replicatedtest.Table(t, dir, "dsm")
	cfg := Config{Now: clk.Now}
	cfg.setDefaults()
	o := newOwner(st, &cfg)
	if err := o.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return o, st
}

func newClock() *testutil.Clock { return testutil.NewClock(time.UnixMilli(1_700_000_000_000)) }

// expect checks an owner operation's reply: no error, and OK is want.
func expect(t *testing.T, what string, want bool) func(reply, error) reply {
	return replicatedtest.Expect(t, what, want, func(r reply) bool { return r.OK })
}

func expectCode(t *testing.T, what, code, msg string) func(reply, error) {
	return func(_ reply, err error) {
		t.Helper()
		var re *kernel.RemoteError
		if !errors.As(err, &re) || re.Code != code || (msg != "" && re.Message != msg) {
			t.Fatalf("%s: err %v, want %s %q", what, err, code, msg)
		}
	}
}

func TestOwnerCreate(t *testing.T) {
	o, st := newTestOwner(t, t.TempDir(), newClock())
	expect(t, "create", true)(o.create("s", 2))
	expect(t, "same n", true)(o.create("s", 2))
	expectCode(t, "other n", CodeExists, "Semaphore 's' already exist with n equal to 2.")(o.create("s", 3))
	if o.sems["s"].n != 2 {
		t.Fatal("a refused create changed n")
	}
	b, err := st.Get(prefixSize + "s")
	var n int
	if err != nil || msgpack.Unmarshal(b, &n) != nil || n != 2 {
		t.Fatalf("persisted size %v %v", b, err)
	}
}

func TestOwnerRead(t *testing.T) {
	o, _ := newTestOwner(t, "", newClock())
	expectCode(t, "missing", CodeNotFound, "Semaphore 's' does not exist.")(o.read("s"))
	o.create("s", 3)
	o.post("s", "a", time.Second)
	rep := expect(t, "read", true)(o.read("s"))
	if rep.N != 3 || rep.Active != 1 {
		t.Fatalf("read %+v", rep)
	}
}

func TestOwnerDestroyRemovesTheSemaphoreAndItsHolders(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	o, st := newTestOwner(t, dir, clk)
	expect(t, "missing", true)(o.destroy("s"))
	o.create("s", 2)
	o.post("s", "a", time.Minute)
	expect(t, "destroy", true)(o.destroy("s"))
	if o.sems["s"] != nil || st.Len() != 0 {
		t.Fatalf("destroy left %d keys", st.Len())
	}
	st.Close()
	o2, _ := newTestOwner(t, dir, clk)
	if len(o2.sems) != 0 {
		t.Fatal("a destroyed semaphore came back on reload")
	}
}

func TestOwnerPost(t *testing.T) {
	clk := newClock()
	o, st := newTestOwner(t, t.TempDir(), clk)
	expectCode(t, "missing", CodeNotFound, "Semaphore 's' does not exist.")(o.post("s", "a", time.Second))
	o.create("s", 2)
	expect(t, "a", true)(o.post("s", "a", time.Second))
	clk.Advance(600 * time.Millisecond)
	expect(t, "a again", true)(o.post("s", "a", time.Second))
	expect(t, "b", true)(o.post("s", "b", time.Second))
	expect(t, "full", false)(o.post("s", "c", time.Second))
	if len(o.sems["s"].holders) != 2 {
		t.Fatal("holders changed by a refused post")
	}
	b, err := st.HGet(prefixHolders+"s", "b")
	var h hold
	if err != nil || msgpack.Unmarshal(b, &h) != nil || h.Start != clk.Now().UnixMilli() || h.Timeout != 1000 {
		t.Fatalf("persisted holder %+v %v", h, err)
	}
	clk.Advance(500 * time.Millisecond) // a's TTL is over, not renewed by its second post
	expect(t, "c after a expired", true)(o.post("s", "c", time.Second))
}

func TestOwnerClose(t *testing.T) {
	o, st := newTestOwner(t, t.TempDir(), newClock())
	expectCode(t, "missing", CodeNotFound, "Semaphore 's' does not exist.")(o.close("s", "a"))
	o.create("s", 2)
	o.post("s", "a", time.Second)
	expect(t, "unknown holder", false)(o.close("s", "x"))
	expect(t, "a", true)(o.close("s", "a"))
	if len(o.sems["s"].holders) != 0 {
		t.Fatal("holder kept")
	}
	if _, err := st.HGet(prefixHolders+"s", "a"); err == nil {
		t.Fatal("holder kept on disk")
	}
}

func TestOwnerExpiry(t *testing.T) {
	clk := newClock()
	o, st := newTestOwner(t, t.TempDir(), clk)
	o.sweep() // no semaphore: nothing happens
	o.create("s", 3)
	o.post("s", "a", time.Second)
	o.post("s", "b", 2*time.Second)
	clk.Advance(time.Second)
	o.sweep()
	if _, ok := o.sems["s"].holders["a"]; ok || len(o.sems["s"].holders) != 1 {
		t.Fatal("expired holder kept")
	}
	if _, err := st.HGet(prefixHolders+"s", "a"); err == nil {
		t.Fatal("expired holder kept on disk")
	}
	clk.Advance(time.Second)
	o.sweep()
	if o.sems["s"] == nil || len(o.sems["s"].holders) != 0 {
		t.Fatal("expiry of holders must keep the semaphore and drop them all")
	}
}

func TestOwnerLoadRestoresSizesAndHoldersInAnyOrder(t *testing.T) {
	clk := newClock()
	for name, order := range map[string][]string{"size then holders": {"size", "holders"}, "holders then size": {"holders", "size"}} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			st, _ := table.Open(table.Config{Dir: dir, Name: "dsm"})
			for _, what := range order {
				if what == "size" {
					st.Set(prefixSize+"s", encode(2))
				} else {
					st.HSet(prefixHolders+"s", "a", encode(&hold{Start: clk.Now().UnixMilli() - 500, Timeout: 1000}))
					st.HSet(prefixHolders+"s", "old", encode(&hold{Start: clk.Now().UnixMilli() - 5000, Timeout: 1000}))
					st.HSet(prefixHolders+"orphan", "x", encode(&hold{Start: clk.Now().UnixMilli(), Timeout: 1000}))
				}
			}
			st.Close()
			o, _ := newTestOwner(t, dir, clk)
			s := o.sems["s"]
			if s == nil || s.n != 2 || len(s.holders) != 1 || s.holders["a"] == nil {
				t.Fatalf("loaded %+v", s)
			}
			if got := s.holders["a"].expires.Sub(clk.Now()); got != 500*time.Millisecond {
				t.Fatalf("a has %v left, want 500ms", got)
			}
			if o.sems["orphan"] != nil {
				t.Fatal("holders without a size made a semaphore")
			}
		})
	}
}

func TestOwnerLoadWithoutPersistenceAndLoadError(t *testing.T) {
	o, _ := newTestOwner(t, "", newClock())
	if len(o.sems) != 0 {
		t.Fatal("in-memory owner starts with semaphores")
	}
	cfg := Config{}
	cfg.setDefaults()
	if err := newOwner(replicatedtest.ClosedTable(t, "dsm"), &cfg).load(context.Background()); err == nil {
		t.Fatal("load from a closed table succeeded")
	}
}

func TestOwnerInstallMergesWithoutDoubling(t *testing.T) {
	clk := newClock()
	o, _ := newTestOwner(t, t.TempDir(), clk)
	expect(t, "install new", true)(o.install(handoff{ID: "s", N: 2, Holders: []handedOff{{Holder: "a", Left: 800}}}))
	if s := o.sems["s"]; s.n != 2 || s.holders["a"].expires.Sub(clk.Now()) != 800*time.Millisecond {
		t.Fatalf("installed %+v", s)
	}
	expect(t, "install again", true)(o.install(handoff{ID: "s", N: 5, Holders: []handedOff{{Holder: "a", Left: 100}, {Holder: "b", Left: 900}}}))
	if s := o.sems["s"]; s.n != 2 || len(s.holders) != 2 || s.holders["a"].expires.Sub(clk.Now()) != 800*time.Millisecond {
		t.Fatalf("merged %+v", s)
	}
	h, ok := o.snapshot("s")
	if !ok || h.N != 2 || len(h.Holders) != 2 {
		t.Fatalf("snapshot %+v", h)
	}
}
