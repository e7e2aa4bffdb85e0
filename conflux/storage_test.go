package conflux

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// A whole group stopped and started again on its disks resumes with its
// state and keeps accepting writes.
func TestOnDiskRestart(t *testing.T) {
	dir := t.TempDir()
	disk := func(i int) Storage { return OnDisk(filepath.Join(dir, g3name(i))) }
	g := newGroup(t, 3, disk)
	for i := range 10 {
		if _, err := g.stores[i%3].Perform(ctxT(t), "add", 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range g.stores {
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i, nd := range g.nodes {
		g.stores[i] = g.startStore(nd, counterConfig(t, disk(i), 3))
	}
	g.leader()
	for i, s := range g.stores {
		st, err := s.Read(ctxT(t), Linearizable)
		if err != nil || st.N != 10 {
			t.Fatalf("n%d after restart: %+v, %v; want N=10", i, st, err)
		}
	}
	if _, err := g.stores[1].Perform(ctxT(t), "add", 5); err != nil {
		t.Fatal(err)
	}
}

func g3name(i int) string { return "n" + string(rune('0'+i)) }

// Snapshots compact the log, and a node that missed more than the kept
// log catches up from a snapshot.
func TestSnapshotCatchUp(t *testing.T) {
	dir := t.TempDir()
	disk := func(i int) Storage { return OnDisk(filepath.Join(dir, g3name(i))) }
	small := func(i int) Config[counter, int] {
		c := counterConfig(t, disk(i), 3)
		c.SnapshotThreshold, c.TrailingLogs, c.SnapshotInterval = 16, 4, 50*time.Millisecond
		return c
	}
	g := &group{t: t}
	for i := range 3 {
		g.nodes = append(g.nodes, startNode(t, g3name(i), nil))
		if i > 0 {
			meet(t, g.nodes[0], g.nodes[i])
		}
	}
	for i, nd := range g.nodes {
		g.stores = append(g.stores, g.startStore(nd, small(i)))
	}
	l := g.leader()
	f := (l + 1) % 3
	if err := g.stores[f].Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := g.stores[l].Perform(ctxT(t), "add", 1); err != nil {
			t.Fatal(err)
		}
	}
	ls := g.stores[l]
	waitFor(t, "leader log compacted", func() bool {
		first, err := ls.stores.logs.FirstIndex()
		return err == nil && first > 50
	})
	// SubscribeEvents before Start, so that no restore can come before it.
	fs, err := New(g.nodes[f], small(f))
	if err != nil {
		t.Fatal(err)
	}
	events, cancel := fs.SubscribeEvents(0)
	defer cancel()
	if err := fs.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Stop(context.Background()) })
	g.stores[f] = fs
	restored := false
	waitFor(t, "follower caught up", func() bool {
		for {
			select {
			case e := <-events:
				if e.Kind == EventRestored && e.Index > 50 { // the leader's, not an old local one
					restored = true
				}
				continue
			default:
			}
			break
		}
		return g.stores[f].State().N == 100
	})
	if !restored {
		t.Fatal("the far-behind follower caught up without a snapshot restore")
	}
	if got := len(g.stores[f].State().Log); got != 100 {
		t.Fatalf("restored history has %d actions, want 100", got)
	}
}
