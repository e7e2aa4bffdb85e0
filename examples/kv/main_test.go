package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/notp-go/notp/vclock"
)

// The service runs end to end: writes reach w replicas, reads through other
// nodes see the second round's values, and after a node stops every key is
// still readable from its other replicas.
func TestKVRuns(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-nodes", "3", "-keys", "200"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"all 200 latest", "stopped kv-3", "still readable"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestKVFlags(t *testing.T) {
	for _, args := range [][]string{{"-nodes", "1"}, {"-n", "5", "-nodes", "4"}, {"-w", "4"}, {"-r", "0"}, {"-keys", "0"}, {"x"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errOut.String())
		}
	}
}

// newer orders versions: a descendant wins; concurrent versions fall back
// to the later write, then the writer's ID.
func TestNewer(t *testing.T) {
	clock := func(counts map[string]uint64) *vclock.Clock {
		c := vclock.New()
		for id, n := range counts {
			for range n {
				c.Increment(id)
			}
		}
		return c
	}
	a1 := item{Clock: clock(map[string]uint64{"a": 1}), Written: 5, Writer: "a"}
	a2 := item{Clock: clock(map[string]uint64{"a": 2}), Written: 1, Writer: "a"}
	b1 := item{Clock: clock(map[string]uint64{"b": 1}), Written: 5, Writer: "b"}
	cases := []struct {
		x, y item
		want bool
	}{
		{a2, a1, true},  // descends, despite the older wall clock
		{a1, a2, false}, // is descended
		{a1, a1, false}, // equal
		{b1, a1, true},  // concurrent, same time: higher writer
		{a1, b1, false},
		{a2, b1, false}, // concurrent: later write wins
		{b1, a2, true},
	}
	for i, c := range cases {
		if got := newer(c.x, c.y); got != c.want {
			t.Errorf("case %d: newer = %v, want %v", i, got, c.want)
		}
	}
}
