package clustertest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
)

// journal records, in order, what happened to the services of a test.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, fmt.Sprintf(format, args...))
}

func (j *journal) take() (out []string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	out, j.events = j.events, nil
	return out
}

// fake is a service that counts its starts in a file of its directory,
// as a real one keeps its state there.
type fake struct {
	j    *journal
	n    *cluster.Node
	file string
}

func (f *fake) Start(context.Context) error {
	b, _ := os.ReadFile(f.file)
	b = append(b, 's')
	f.j.add("start %s after %d", f.n.Self().ID, len(b)-1)
	return os.WriteFile(f.file, b, 0o600)
}

func (f *fake) Stop(context.Context) error {
	// The node still runs when its service stops.
	if err := f.n.Ring().Meet(context.Background(), f.n.Self()); err != nil {
		f.j.add("stop %s on a stopped node: %v", f.n.Self().ID, err)
	}
	f.j.add("stop %s", f.n.Self().ID)
	return nil
}

func TestRunStartsAServiceBesideEveryNodeAcrossRestartsAndAdd(t *testing.T) {
	j := &journal{}
	cfg := clustertest.Config{
		Nodes: 2, Faults: true,
		OnStart: func(_ context.Context, c *clustertest.Cluster, i int) error {
			j.add("hook start %s", c.Node(i).Self().ID)
			return nil
		},
		OnStop: func(_ context.Context, c *clustertest.Cluster, i int) error {
			j.add("hook stop %s", c.Node(i).Self().ID)
			return nil
		},
	}
	ss := clustertest.Run(&cfg, func(c *clustertest.Cluster, i int) (*fake, error) {
		return &fake{j: j, n: c.Node(i), file: filepath.Join(c.Dir(i), "starts")}, nil
	})
	t.Cleanup(func() { // runs after the cluster's cleanup stopped every node
		want := []string{"stop n0", "hook stop n0", "stop n1", "hook stop n1", "stop n2", "hook stop n2"}
		if got := j.take(); !slices.Equal(got, want) {
			t.Errorf("at cleanup %q, want %q", got, want)
		}
	})
	c := clustertest.Start(t, cfg)
	want := []string{"hook start n0", "start n0 after 0", "hook start n1", "start n1 after 0"}
	if got := j.take(); !slices.Equal(got, want) {
		t.Fatalf("on Start %q, want %q", got, want)
	}
	if c.Dir(0) == c.Dir(1) {
		t.Fatalf("nodes share the directory %s", c.Dir(0))
	}

	old := ss.At(1)
	c.Restart(1)
	want = []string{"stop n1", "hook stop n1", "hook start n1", "start n1 after 1"}
	if got := j.take(); !slices.Equal(got, want) {
		t.Fatalf("on Restart %q, want %q", got, want)
	}
	if ss.At(1) == old || ss.At(1).n != c.Node(1) {
		t.Fatal("At(1) is not the restarted node's new instance")
	}
	c.Stop(1)
	c.Stop(1)
	want = []string{"stop n1", "hook stop n1"}
	if got := j.take(); !slices.Equal(got, want) {
		t.Fatalf("on two Stops %q, want %q", got, want)
	}
	c.Restart(1)
	j.take()

	i := c.Add()
	if i != 2 || ss.At(2) == nil || ss.At(2).n != c.Node(2) {
		t.Fatalf("Add = %d with instance %v", i, ss.At(2))
	}
	if err := c.Node(0).Ring().Meet(t.Context(), c.Node(2).Self()); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(t.Context()); err != nil {
		t.Fatalf("after Add and Meet: %v", err)
	}
	if got := c.Node(1).Ring().View().NumberNodes(); got != 3 {
		t.Fatalf("n1's ring holds %d nodes after Add, want 3", got)
	}
	want = []string{"hook start n2", "start n2 after 0"}
	if got := j.take(); !slices.Equal(got, want) {
		t.Fatalf("on Add %q, want %q", got, want)
	}
	var none *fake
	if ss.At(7) != none {
		t.Fatal("At of a node that never ran one is not the zero value")
	}
}
