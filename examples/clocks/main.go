// Command clocks shows vclock on its own: two replicas of a value are
// updated independently, their clocks say the updates are concurrent, and a
// merge reconciles them; then a later update descends from both.
//
//	go run ./examples/clocks
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/notp-go/notp/vclock"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "clocks:", err)
		os.Exit(1)
	}
}

func run() error {
	// Both replicas start from the same version, written by node a.
	a := vclock.New()
	a.Increment("a")
	b := a.Clone()
	fmt.Println("start:              a vs b =", a.Compare(b))

	// A partition: each side accepts a write.
	a.Increment("a")
	b.Increment("b")
	fmt.Println("after both wrote:   a vs b =", a.Compare(b), "-> a conflict the application must resolve")

	// The application merges the values; the clocks merge too.
	merged := a.Clone()
	merged.Merge(b)
	fmt.Println("merged vs a:       ", merged.Compare(a))
	fmt.Println("merged vs b:       ", merged.Compare(b))

	// A write on top of the merge supersedes both sides.
	merged.Increment("b")
	fmt.Println("next write vs a:   ", merged.Compare(a), " descends a:", merged.Descends(a), " descends b:", merged.Descends(b))

	counts := map[string]uint64{}
	for _, id := range merged.Nodes() {
		counts[id] = merged.Count(id)
	}
	out, err := json.Marshal(counts)
	if err != nil {
		return err
	}
	fmt.Println("counts:            ", string(out))
	return nil
}
