//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cfProc is one examples/conflux process.
type cfProc struct {
	id, dir    string
	port, http int
	args       []string
	cmd        *exec.Cmd
	log        *bytes.Buffer // every incarnation's output
	exited     chan struct{}
	killed     bool // by the test: its exit is expected
}

func (p *cfProc) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", p.http, path) }

func startCF(t *testing.T, bin string, p *cfProc) {
	t.Helper()
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Env = append(os.Environ(), "NOTP_COOKIE=conflux e2e cookie 0123456789abcdef")
	if p.log == nil {
		p.log = &bytes.Buffer{}
	} else {
		fmt.Fprintf(p.log, "--- restarted at %s\n", time.Now().Format(time.RFC3339Nano))
	}
	p.killed = false
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	dieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.exited) }()
}

func (p *cfProc) kill() {
	p.killed = true
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// counterState is examples/conflux's state as JSON.
type counterState struct {
	Total int64 `json:"total"`
	Adds  int64 `json:"adds"`
}

func getJSON(ctx context.Context, url string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

// Three examples/conflux processes count while clients add on every node;
// the leader is SIGKILLed mid-run and restarted from its directory; every
// acknowledged add is in the final total on every node, and no more adds
// than were attempted.
func TestConfluxKillLeader(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "conflux")
	c := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./examples/conflux")
	c.Dir = "../.."
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	var ps []*cfProc
	for i, id := range []string{"a", "b", "c"} {
		p := &cfProc{id: id, dir: filepath.Join(dir, id), port: freePort(t), http: freePort(t)}
		p.args = []string{"-id", id, "-port", strconv.Itoa(p.port), "-http", "127.0.0.1:" + strconv.Itoa(p.http), "-dir", p.dir}
		if i > 0 {
			p.args = append(p.args, "-meet", fmt.Sprintf("a@127.0.0.1:%d", ps[0].port))
		}
		ps = append(ps, p)
	}
	// The nodes that meet a start before it: nodes started together come
	// up in any order, so a node must keep trying to meet a peer that is
	// not listening yet rather than exit.
	for _, p := range []*cfProc{ps[1], ps[2], ps[0]} {
		startCF(t, bin, p)
	}
	defer func() {
		for _, p := range ps {
			p.kill()
		}
		if t.Failed() {
			for _, p := range ps {
				t.Logf("--- %s (%v) log:\n%s", p.id, p.cmd.ProcessState, p.log.String())
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	leaderOf := func() string {
		for _, p := range ps {
			var l struct {
				Leader string `json:"leader"`
				Known  bool   `json:"known"`
			}
			if getJSON(ctx, p.url("/leader"), &l) == nil && l.Known {
				return l.Leader
			}
		}
		return ""
	}
	waitCF(t, ps, "a leader", func() bool { return leaderOf() != "" })

	var acked, attempted atomic.Int64
	var alive [3]atomic.Bool
	for i := range alive {
		alive[i].Store(true)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range ps {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if !alive[i].Load() {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					attempted.Add(1)
					rctx, rcancel := context.WithTimeout(ctx, 6*time.Second)
					req, _ := http.NewRequestWithContext(rctx, "POST", ps[i].url("/add?n=1"), nil)
					resp, err := http.DefaultClient.Do(req)
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == 200 {
							acked.Add(1)
						}
					}
					rcancel()
					if err != nil || resp.StatusCode != 200 {
						time.Sleep(20 * time.Millisecond) // a node restarting refuses at once
					}
				}
			}()
		}
	}
	waitCF(t, ps, "adds before the kill", func() bool { return acked.Load() >= 50 })
	var victim int
	l := leaderOf()
	for i, p := range ps {
		if p.id == l {
			victim = i
		}
	}
	alive[victim].Store(false)
	ps[victim].kill()
	before := acked.Load()
	waitCF(t, ps, "adds after the kill", func() bool { return acked.Load() >= before+50 })
	startCF(t, bin, ps[victim])
	alive[victim].Store(true)
	waitCF(t, ps, "adds through the restarted node", func() bool { return acked.Load() >= before+100 })
	close(stop)
	wg.Wait()

	a, n := acked.Load(), attempted.Load()
	var final int64
	waitCF(t, ps, "all nodes agree", func() bool {
		var totals []int64
		for _, p := range ps {
			var st counterState
			if err := getJSON(ctx, p.url("/read"), &st); err != nil {
				return false
			}
			totals = append(totals, st.Total)
		}
		final = totals[0]
		return totals[0] == totals[1] && totals[1] == totals[2]
	})
	t.Logf("acknowledged %d of %d attempted adds; final total %d on every node (leader %s was killed)", a, n, final, ps[victim].id)
	if final < a || final > n {
		t.Fatalf("final total %d outside [acknowledged %d, attempted %d]", final, a, n)
	}
}

// waitCF polls cond until it holds; it fails at once when a process the
// test did not kill has exited, and after 90 s.
func waitCF(t *testing.T, ps []*cfProc, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		for _, p := range ps {
			select {
			case <-p.exited:
				if !p.killed {
					t.Fatalf("waiting for %s: process %s exited (%v)", what, p.id, p.cmd.ProcessState)
				}
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
