package table

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var crashes = flag.Int("table.crashes", 20, "how many times TestCrashKeepsAcknowledgedWrites kills its writer process")

// The crash test re-executes this test binary as a writer when these are
// set: the table directory and the round number that keeps its keys
// apart from earlier rounds'.
const (
	crashDirEnv   = "NOTP_TABLE_CRASH_DIR"
	crashRoundEnv = "NOTP_TABLE_CRASH_ROUND"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		os.Exit(crashWriter(dir, os.Getenv(crashRoundEnv)))
	}
	os.Exit(m.Run())
}

// crashConfig compacts often, so that kills also land in rotations and
// compactions.
func crashConfig(dir string) Config {
	return Config{Dir: dir, Name: "crash", Sync: SyncAlways, WriteThreshold: 97}
}

// crashWriter is the child: eight goroutines write with SyncAlways and
// print each write once it is acknowledged, until the parent kills the
// process (or 30 s pass, should the parent be gone).
func crashWriter(dir, round string) int {
	tb, err := Open(crashConfig(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 3
	}
	var out sync.Mutex
	ack := func(format string, args ...any) {
		out.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...) // one write per line
		out.Unlock()
	}
	ack("ready")
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				key := fmt.Sprintf("r%s.g%d.%d", round, g, i)
				var err error
				switch i % 5 {
				case 0, 1:
					if err = tb.Set(key, crashValue(key)); err == nil {
						ack("set %s", key)
					}
				case 2:
					set := fmt.Sprintf("s.r%s", round)
					if err = tb.SSet(set, key); err == nil {
						ack("sset %s %s", set, key)
					}
				case 3:
					hash := fmt.Sprintf("h.r%s.g%d", round, g)
					if err = tb.HSet(hash, key, crashValue(key)); err == nil {
						ack("hset %s %s", hash, key)
					}
				case 4:
					old := fmt.Sprintf("r%s.g%d.%d", round, g, i-4) // a scalar set earlier
					// Once the delete is issued the key may be gone
					// before it is acknowledged.
					ack("deleting %s", old)
					if err = tb.Del(old); err == nil {
						ack("del %s", old)
					}
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "write:", err)
					os.Exit(4)
				}
			}
		})
	}
	wg.Wait()
	return 0
}

func crashValue(key string) []byte { return []byte("v:" + key) }

// acked is every write some writer process saw acknowledged.
type acked struct {
	scalars map[string]int // key -> present, deleting (either way), deleted
	members map[[2]string]bool
	fields  map[[2]string]bool
	n       int
}

// The states of an acknowledged scalar.
const (
	present = iota
	deleting
	deleted
)

func (a *acked) add(line string) error {
	f := strings.Fields(line)
	switch {
	case len(f) == 2 && f[0] == "set":
		a.scalars[f[1]] = present
	case len(f) == 2 && f[0] == "deleting":
		a.scalars[f[1]] = deleting
		return nil
	case len(f) == 2 && f[0] == "del":
		a.scalars[f[1]] = deleted
	case len(f) == 3 && f[0] == "sset":
		a.members[[2]string{f[1], f[2]}] = true
	case len(f) == 3 && f[0] == "hset":
		a.fields[[2]string{f[1], f[2]}] = true
	default:
		return fmt.Errorf("writer printed %q", line)
	}
	a.n++
	return nil
}

// check finds every acknowledged write in tb.
func (a *acked) check(tb *Table) error {
	for k, st := range a.scalars {
		v, err := tb.Get(k)
		switch {
		case st == present && (err != nil || string(v) != string(crashValue(k))):
			return fmt.Errorf("acknowledged set %s: got %q, %v", k, v, err)
		case st == deleted && !errors.Is(err, ErrNotFound):
			return fmt.Errorf("acknowledged del %s: key still there (%q, %v)", k, v, err)
		}
	}
	for m := range a.members {
		if ok, err := tb.SMember(m[0], m[1]); !ok || err != nil {
			return fmt.Errorf("acknowledged sset %s %s: member = %v, %v", m[0], m[1], ok, err)
		}
	}
	for f := range a.fields {
		if v, err := tb.HGet(f[0], f[1]); err != nil || string(v) != string(crashValue(f[1])) {
			return fmt.Errorf("acknowledged hset %s %s: got %q, %v", f[0], f[1], v, err)
		}
	}
	return nil
}

// The table keeps every write acknowledged under SyncAlways when its
// process is SIGKILLed at a random point, and always reopens: a writer
// process is killed -table.crashes times, the directory reopened after
// each kill and checked against every acknowledgement printed by every
// writer so far.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	exe, err := os.Executable()
	must(t, err)
	dir := t.TempDir()
	a := &acked{scalars: map[string]int{}, members: map[[2]string]bool{}, fields: map[[2]string]bool{}}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := range *crashes {
		delay := time.Duration(rng.IntN(150_000)) * time.Microsecond
		lines, err := runAndKill(t, exe, dir, round, delay)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		before := a.n
		for _, l := range lines {
			if err := a.add(l); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		tb, err := Open(crashConfig(dir))
		if err != nil {
			t.Fatalf("round %d: reopening after the kill: %v", round, err)
		}
		err = a.check(tb)
		must(t, tb.Close())
		if err != nil {
			t.Fatalf("round %d (killed after %v, %d acks): %v", round, delay, a.n-before, err)
		}
	}
	t.Logf("%d kills, %d acknowledged writes, all found", *crashes, a.n)
	if a.n == 0 {
		t.Fatal("no write was ever acknowledged: the writer did not run")
	}
	// The writers compacted too, so kills could land in compactions.
	cfg := crashConfig(dir)
	if _, err := os.Stat(cfg.path(suffixData)); err != nil {
		t.Fatalf("no snapshot was ever written: %v", err)
	}
}

// runAndKill starts a writer, kills it delay after it is ready and
// returns the complete lines it printed after "ready".
func runAndKill(t *testing.T, exe, dir string, round int, delay time.Duration) ([]string, error) {
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, fmt.Sprintf("%s=%d", crashRoundEnv, round))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	killed := make(chan struct{})
	defer func() {
		cmd.Process.Kill()
		<-killed
	}()
	br := bufio.NewReader(stdout)
	if l, err := br.ReadString('\n'); err != nil || l != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		close(killed)
		return nil, fmt.Errorf("writer did not start (%q, %v): %s", l, err, stderr.String())
	}
	timer := time.AfterFunc(delay, func() { cmd.Process.Signal(syscall.SIGKILL) })
	defer timer.Stop()
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err == io.EOF {
			break // a line cut by the kill was never complete
		}
		if err != nil {
			return nil, err
		}
		lines = append(lines, strings.TrimSuffix(l, "\n"))
	}
	werr := cmd.Wait()
	close(killed)
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		return nil, fmt.Errorf("writer ended with %v, not by the kill: %s", werr, stderr.String())
	}
	return lines, nil
}
