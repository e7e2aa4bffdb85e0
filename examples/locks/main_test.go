package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type entry struct {
	token      uint64
	node       string
	start, end int64
}

func readLedger(t *testing.T, path string) []entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var es []entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e entry
		if _, err := fmt.Sscanf(sc.Text(), "%d %s %d %d", &e.token, &e.node, &e.start, &e.end); err != nil {
			t.Fatalf("ledger line %q: %v", sc.Text(), err)
		}
		es = append(es, e)
	}
	return es
}

// Three nodes in one process, as the three processes of the doc comment:
// the job runs on one node at a time, its runs never overlap, and the
// ledger's tokens only grow.
func TestJobRunsOnOneNodeAtATime(t *testing.T) {
	dir := t.TempDir()
	ledger := filepath.Join(dir, "ledger.txt")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	portA := freePort(t)
	var wg sync.WaitGroup
	outs := make([]*bytes.Buffer, 3)
	for i, id := range []string{"a", "b", "c"} {
		port := portA
		args := []string{"-id", id, "-insecure", "-dir", filepath.Join(dir, id), "-ledger", ledger,
			"-every", "50ms", "-work", "10ms", "-ttl", "3s"}
		if i > 0 {
			port = freePort(t)
			args = append(args, "-meet", "a@127.0.0.1:"+strconv.Itoa(portA))
		}
		args = append(args, "-port", strconv.Itoa(port))
		outs[i] = &bytes.Buffer{}
		var errOut bytes.Buffer
		wg.Go(func() {
			if code := run(ctx, args, outs[i], &errOut); code != 0 {
				t.Errorf("%s: exit %d: %s", id, code, errOut.String())
			}
		})
		if i == 0 {
			time.Sleep(200 * time.Millisecond) // let a listen before the others meet it
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		es := readLedger(t, ledger)
		nodes := map[string]bool{}
		for _, e := range es {
			nodes[e.node] = true
		}
		if len(es) >= 12 && len(nodes) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ledger after 60 s: %d runs by %d nodes", len(es), len(nodes))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	es := readLedger(t, ledger)
	for i := 1; i < len(es); i++ {
		if es[i].token <= es[i-1].token {
			t.Errorf("token %d after %d", es[i].token, es[i-1].token)
		}
		if es[i].start < es[i-1].end {
			t.Errorf("run %d (%s) started before run %d (%s) ended", i, es[i].node, i-1, es[i-1].node)
		}
	}
	if !strings.Contains(outs[0].String()+outs[1].String()+outs[2].String(), "run token=") {
		t.Error("no node printed a run")
	}
}

func TestLedgerRefusesStaleTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.txt")
	if err := appendFenced(path, 5, "5 a 0 0"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []uint64{5, 4} {
		if err := appendFenced(path, tok, fmt.Sprintf("%d b 0 0", tok)); err == nil {
			t.Fatalf("token %d after 5 accepted", tok)
		}
	}
	if err := appendFenced(path, 6, "6 b 0 0"); err != nil {
		t.Fatal(err)
	}
	if es := readLedger(t, path); len(es) != 2 {
		t.Fatalf("ledger %+v", es)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"-id", "a", "-dir", "d"}, {"-id", "a", "-dir", "d", "-ledger", "l"},
		{"-id", "a", "-dir", "d", "-ledger", "l", "-insecure", "-port", "0"},
		{"-id", "a", "-dir", "d", "-ledger", "l", "-insecure", "-ttl", "1s", "-work", "2s"}, {"x"}} {
		var out, errOut bytes.Buffer
		t.Setenv("NOTP_COOKIE", "")
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errOut.String())
		}
	}
}
