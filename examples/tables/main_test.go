package main

import (
	"bytes"
	"strings"
	"testing"
)

// The example writes, reopens and finds its data; run again on the same
// directory it sees its first run's visit.
func TestTablesRuns(t *testing.T) {
	dir := t.TempDir()
	for run1, want := range []string{"visits  scalar 1", "visits  scalar 2"} {
		var out, errOut bytes.Buffer
		if code := run([]string{"-dir", dir}, &out, &errOut); code != 0 {
			t.Fatalf("run %d: exit %d: %s", run1, code, errOut.String())
		}
		for _, w := range []string{want, "nodes   set    [node-a node-b]", "job:42  hash   owner=node-a state=running",
			"refused: table: Invalid command 'sset' against key 'job:42' of type 'hash'", "in memory: cache.k = v"} {
			if !strings.Contains(out.String(), w) {
				t.Errorf("run %d: output lacks %q:\n%s", run1, w, out.String())
			}
		}
	}
}

func TestTablesFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"extra"}, &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}
