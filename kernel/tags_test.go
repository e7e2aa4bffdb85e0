package kernel

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// Changed from notp: the base is redrawn after an hour of the injected clock;
// the counter never resets, so tags stay unique.
func TestTagRotation(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	g := tagGen{now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	t1, t2 := g.next(), g.next()
	base := func(s string) string { return s[:strings.IndexByte(s, '.')] }
	if t1 == t2 || base(t1) != base(t2) || len(base(t1)) != 32 {
		t.Fatalf("tags %q %q", t1, t2)
	}
	mu.Lock()
	now = now.Add(tagBaseLifetime)
	mu.Unlock()
	t3 := g.next()
	if base(t3) == base(t1) {
		t.Fatal("base not rotated after an hour")
	}
	seen := map[string]bool{}
	for range 10000 {
		tag := g.next()
		if seen[tag] {
			t.Fatalf("duplicate tag %q", tag)
		}
		seen[tag] = true
	}
}

func TestStatsCount(t *testing.T) {
	a, b := pair(t, false, nil)
	echo(t, b, "echo")
	for range 5 {
		if _, err := a.Call(ctxT(t), b.Self(), "echo", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.FramesOut < 5 || sb.FramesIn < 5 || sa.BytesOut == 0 || sb.BytesIn == 0 || sa.ActiveConnections != 1 || sb.ActiveConnections != 1 {
		t.Fatalf("stats a=%+v b=%+v", sa, sb)
	}
}
