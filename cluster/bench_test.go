package cluster

import (
	"testing"
	"time"

	"github.com/notp-go/notp/command"
)

// BenchmarkCommandPing is one command's round trip from an operator's
// kernel through the command server (membership check, decoding, reply
// encoding) over loopback TCP.
func BenchmarkCommandPing(b *testing.B) {
	h := newCmdHarness(b, 5*time.Second, false)
	for b.Loop() {
		if r := h.call(command.Ping, command.Args{}); !r.OK {
			b.Fatal(r.Error)
		}
	}
}

// BenchmarkCommandInsert measures a mutating command with node validation
// (against the ring double, so the ring's own cost is not included).
func BenchmarkCommandInsert(b *testing.B) {
	h := newCmdHarness(b, 5*time.Second, false)
	n := node("x", 7)
	for b.Loop() {
		if r := h.call(command.Insert, command.Args{Node: &n, Weight: 4}); !r.OK {
			b.Fatal(r.Error)
		}
	}
}
