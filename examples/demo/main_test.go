package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The demo runs end to end: three nodes agree, every key reaches its owner
// (the owner checks ownership in its own ring) and the counts add up.
func TestDemoRuns(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-keys", "600"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"all 3 rings agree", "ring \"demo\": 3 nodes, 384 tokens", "node-1", "node-2", "node-3", "the counters saw 600"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDemoFlags(t *testing.T) {
	for _, args := range [][]string{{"-nodes", "0"}, {"-nodes", "17"}, {"-keys", "0"}, {"-rfactor", "-1"}, {"extra"}, {"-nope"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errOut.String())
		}
		if out.Len() != 0 || errOut.Len() == 0 {
			t.Errorf("%v: want only an error on stderr; stdout %q stderr %q", args, out.String(), errOut.String())
		}
	}
}
