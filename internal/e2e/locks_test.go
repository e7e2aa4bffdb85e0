//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ledgerRun is one line of examples/locks' ledger: a run of the job.
type ledgerRun struct {
	token      uint64
	node       string
	start, end int64 // Unix nanoseconds
}

func readLedgerRuns(t *testing.T, path string) []ledgerRun {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rs []ledgerRun
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r ledgerRun
		if _, err := fmt.Sscanf(sc.Text(), "%d %s %d %d", &r.token, &r.node, &r.start, &r.end); err != nil {
			t.Fatalf("ledger line %q: %v", sc.Text(), err)
		}
		rs = append(rs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rs
}

// examples/locks as its doc runs it: three processes sharing a cookie and
// a ledger. The job runs on one node at a time; the node that ran the
// latest run is SIGKILLed (possibly holding the lock) and restarted from
// its directory; the others go on meanwhile, the restarted node runs the
// job again, no two runs overlap and the ledger refused no write (every
// run held the newest token).
func TestLocksThreeProcesses(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "locks")
	c := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./examples/locks")
	c.Dir = "../.."
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	ledger := filepath.Join(dir, "ledger.txt")
	portA := freePort(t)
	var ps []*cfProc
	for i, id := range []string{"a", "b", "c"} {
		port := portA
		if i > 0 {
			port = freePort(t)
		}
		p := &cfProc{id: id, dir: filepath.Join(dir, id), port: port}
		p.args = []string{"-id", id, "-port", strconv.Itoa(port), "-dir", p.dir, "-ledger", ledger,
			"-every", "100ms", "-work", "20ms", "-ttl", "2s"}
		if i > 0 {
			p.args = append(p.args, "-meet", "a@127.0.0.1:"+strconv.Itoa(portA))
		}
		ps = append(ps, p)
	}
	defer func() {
		for _, p := range ps {
			if p.cmd != nil {
				p.kill()
			}
		}
		if t.Failed() {
			for _, p := range ps {
				t.Logf("--- %s (%v) output:\n%s", p.id, p.cmd.ProcessState, p.log.String())
			}
		}
	}()
	// b and c meet a once started: a listens first.
	startCF(t, bin, ps[0])
	waitCF(t, ps[:1], "a listening", func() bool {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(portA), time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	startCF(t, bin, ps[1])
	startCF(t, bin, ps[2])

	runsBy := func(rs []ledgerRun) map[string]int {
		by := map[string]int{}
		for _, r := range rs {
			by[r.node]++
		}
		return by
	}
	waitCF(t, ps, "runs by two nodes", func() bool {
		rs := readLedgerRuns(t, ledger)
		return len(rs) >= 10 && len(runsBy(rs)) >= 2
	})

	rs := readLedgerRuns(t, ledger)
	var victim *cfProc
	for _, p := range ps {
		if p.id == rs[len(rs)-1].node {
			victim = p
		}
	}
	victim.kill()
	killedAt := len(rs)
	t.Logf("%d runs (%v); SIGKILLed %s", killedAt, runsBy(rs), victim.id)
	waitCF(t, ps, "runs by the other two after the kill", func() bool {
		return len(readLedgerRuns(t, ledger)) >= killedAt+5
	})
	startCF(t, bin, victim)
	restartedAt := len(readLedgerRuns(t, ledger))
	waitCF(t, ps, victim.id+" running the job again after its restart", func() bool {
		return runsBy(readLedgerRuns(t, ledger)[restartedAt:])[victim.id] > 0
	})

	rs = readLedgerRuns(t, ledger)
	t.Logf("%d runs in all (%v)", len(rs), runsBy(rs))
	for i := 1; i < len(rs); i++ {
		if rs[i].token <= rs[i-1].token {
			t.Errorf("ledger run %d: token %d after %d", i, rs[i].token, rs[i-1].token)
		}
		if rs[i].start < rs[i-1].end {
			t.Errorf("run %d (%s, token %d) started before run %d (%s, token %d) ended",
				i, rs[i].node, rs[i].token, i-1, rs[i-1].node, rs[i-1].token)
		}
	}
	for _, p := range ps {
		p.kill() // its output is complete once it exited
		if out := p.log.String(); strings.Contains(out, "stale fencing token") {
			t.Errorf("%s: the ledger refused a run:\n%s", p.id, out)
		}
	}
}
