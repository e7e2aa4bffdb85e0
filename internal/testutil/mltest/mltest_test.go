package mltest

import (
	"io"
	"testing"
	"time"
)

func TestFastConfigDetectsFailuresQuickly(t *testing.T) {
	c := FastConfig()
	// memberlist's suspicion timeout is SuspicionMult × ProbeInterval
	// (for clusters of under ten nodes), plus a probe to notice.
	if d := time.Duration(c.SuspicionMult)*c.ProbeInterval + c.ProbeInterval + c.ProbeTimeout; d > 2*time.Second {
		t.Fatalf("a failed node is seen after about %v, want at most 2 s", d)
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		t.Fatalf("ProbeTimeout %v must be below ProbeInterval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.LogOutput != io.Discard {
		t.Fatal("memberlist's own log output is not discarded")
	}
}
