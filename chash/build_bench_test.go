package chash

import (
	"fmt"
	"testing"

	"github.com/notp-go/notp"
)

// buildShapes are the large rings whose construction node by node was
// quadratic: every Insert published a snapshot of all the tokens so far.
var buildShapes = []struct{ members, weight int }{{100, 4096}, {400, 4096}}

func buildNodes(members int) []notp.Node {
	nodes := make([]notp.Node, members)
	for i := range nodes {
		nodes[i] = notp.Node{ID: fmt.Sprintf("node-%04d", i), Host: "10.0.0.1", Port: 7000 + i}
	}
	return nodes
}

// BenchmarkInsertEach builds a ring with one Insert per node: the path
// Build replaces, quadratic in the node count (400 × 4096 took 80 s and
// 6.4 GB, so only the smaller shape runs here).
func BenchmarkInsertEach(b *testing.B) {
	for _, s := range buildShapes[:1] {
		b.Run(fmt.Sprintf("members=%d/weight=%d", s.members, s.weight), func(b *testing.B) {
			nodes := buildNodes(s.members)
			b.ReportAllocs()
			for b.Loop() {
				r := New(s.weight, 2)
				for _, n := range nodes {
					r.Insert(n, s.weight)
				}
			}
		})
	}
}

// BenchmarkBuild builds the same rings with one Build.
func BenchmarkBuild(b *testing.B) {
	for _, s := range buildShapes {
		b.Run(fmt.Sprintf("members=%d/weight=%d", s.members, s.weight), func(b *testing.B) {
			nodes := buildNodes(s.members)
			ws := make([]Weighted, len(nodes))
			for i, n := range nodes {
				ws[i] = Weighted{Node: n, Weight: s.weight}
			}
			b.ReportAllocs()
			for b.Loop() {
				Build(s.weight, 2, ws)
			}
		})
	}
}
