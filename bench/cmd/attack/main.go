// Command attack measures how a real node process stands up to hostile
// peers. It builds nothing: -node names a built examples/node binary. For
// each attack it starts a fresh node on 127.0.0.1 (a free port, a random
// cookie), waits until the node answers, runs the attack for a bounded
// time while sampling the node's RSS, VmHWM, open file descriptors and
// threads from /proc every 20 ms and while a proper cookie holder calls
// the node's command server (ping) every 50 ms, then kills the node and
// prints one Markdown table row.
//
//	go build -o /tmp/attack/node ./examples/node
//	cd bench && go run ./cmd/attack -node /tmp/attack/node
//
// Flags:
//
//	-node PATH     the examples/node binary (required)
//	-only LIST     comma-separated attack names or numbers (default: all)
//	-runs N        repeat the whole set N times, a table each (default 1)
//	-small         tiny sizes and times: checks the tool, measures nothing
//	-v             print progress to stderr
//
// The attacks (rows), by -only name or number:
//
//  1. proof-leak: a dialer without the cookie sends the protocol byte and a
//     valid hello; does the node send anything after its hello before the
//     dialer proved anything? If it sends its proof, how fast offline
//     guesses run against it and whether a dictionary holding the cookie
//     recovers it (within the attack's time). Then, for information: a
//     cookie holder's kernel dials a listener of the bench posing as a
//     node, which captures the dialer's proof, and the row says how many
//     offline guesses per second (each an argon2id stretching) one core
//     runs against it for 2 s.
//  2. ml-junk: 10 unauthenticated connections with the memberlist protocol
//     byte, each sending 20 MB of junk as fast as the node takes it.
//  3. idle-conns: 1000 unauthenticated connections that send nothing, held
//     8 s: when the node closes them, when its fds come back.
//  4. partial-streams: a cookie holder opens 100 chunked calls of 4 MB whose
//     last chunk never comes.
//  5. unread-replies: a cookie holder sends 286 MB of echo calls and never
//     reads the replies.
//  6. nil-entries: a cookie holder calls the gossip handler with a 4 MB ring
//     message holding 1,000,000 nil entries.
//  7. big-rings: a cookie holder casts two valid 6,000-entry ring updates
//     (distinct node IDs, every address a counting sink of the bench's own);
//     then: does the ring still answer, does an insert through the command
//     server work, and does the node restart from its flush file?
//
// The client side of the authenticated handshake is written by hand in
// authconn.go, with the kernel's key schedule (internal/cookiekey); it is
// the only file to edit when the hello changes.
//
// Only 127.0.0.1 is ever attacked, every loop is bounded in count and time
// (15 s at most per attack), and every node started is killed before the
// program exits. Linux only: the figures come from /proc.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// config holds every size and time of the attacks.
type config struct {
	bin       string
	cookie    string
	maxAttack time.Duration // hard bound of one attack

	proofWait time.Duration // proof leak: how long to wait for a frame after the node's hello
	guessFor  time.Duration // proof leak: how long to time offline guesses
	dictWords int           // proof leak: dictionary size (the real cookie is added)

	junkConns int   // memberlist junk: connections
	junkBytes int64 // memberlist junk: bytes per connection

	idleConns int           // idle: connections
	idleHold  time.Duration // idle: how long they are held

	streams     int           // partial streams: how many
	streamBytes int           // partial streams: bytes sent on each (the last chunk never comes)
	hold        time.Duration // partial streams, unread replies: how long the attacker holds on afterwards

	floodBytes int64 // unread replies: bytes of echo calls sent
	floodCall  int   // unread replies: payload bytes per echo call

	nilEntries  int // nil entries: how many
	nilMsgBytes int // nil entries: message size (padded up to it)

	ringEntries int // big rings: entries per message

	after time.Duration // measuring goes on this long after an attack returns
}

// defaultConfig is the full-size attack set.
func defaultConfig() config {
	return config{
		maxAttack: 15 * time.Second,
		proofWait: 2 * time.Second, guessFor: 2 * time.Second, dictWords: 100_000,
		junkConns: 10, junkBytes: 20 << 20,
		idleConns: 1000, idleHold: 8 * time.Second,
		streams: 100, streamBytes: 4 << 20, hold: 3 * time.Second,
		floodBytes: 286 << 20, floodCall: 60 << 10,
		nilEntries: 1_000_000, nilMsgBytes: 4 << 20,
		ringEntries: 6000,
		after:       time.Second,
	}
}

// smallConfig checks the machinery in a few seconds.
func smallConfig() config {
	return config{
		maxAttack: 5 * time.Second,
		proofWait: 500 * time.Millisecond, guessFor: 50 * time.Millisecond, dictWords: 100,
		junkConns: 2, junkBytes: 64 << 10,
		idleConns: 5, idleHold: 300 * time.Millisecond,
		streams: 2, streamBytes: 128 << 10, hold: 200 * time.Millisecond,
		floodBytes: 256 << 10, floodCall: 4 << 10,
		nilEntries: 1000, nilMsgBytes: 4 << 10,
		ringEntries: 20,
		after:       200 * time.Millisecond,
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("attack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("node", "", "the examples/node binary (required)")
	only := fs.String("only", "", "comma-separated attack names or numbers (default: all)")
	runs := fs.Int("runs", 1, "repeat the whole set this many times (1..10)")
	small := fs.Bool("small", false, "tiny sizes and times: checks the tool, measures nothing")
	verbose := fs.Bool("v", false, "print progress to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg := defaultConfig()
	if *small {
		cfg = smallConfig()
	}
	cfg.bin = *bin
	list, err := selectAttacks(*only)
	switch {
	case err != nil:
		fmt.Fprintln(stderr, "attack:", err)
		return 2
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "attack: unexpected arguments %q\n", fs.Args())
		return 2
	case *bin == "":
		fmt.Fprintln(stderr, "attack: -node is required (go build -o /tmp/attack/node ./examples/node)")
		return 2
	case *runs < 1 || *runs > 10:
		fmt.Fprintf(stderr, "attack: -runs %d: want 1..10\n", *runs)
		return 2
	}
	if st, err := os.Stat(*bin); err != nil || st.IsDir() {
		fmt.Fprintf(stderr, "attack: -node %s: not a file\n", *bin)
		return 2
	}
	progress := io.Discard
	if *verbose {
		progress = stderr
	}
	for r := range *runs {
		fmt.Fprintf(stdout, "\nRun %d of %d, %s, load average %s\n\n", r+1, *runs,
			time.Now().UTC().Format("2006-01-02 15:04 MST"), loadAvg())
		fmt.Fprint(stdout, tableHeader)
		for _, a := range list {
			if ctx.Err() != nil {
				return 1
			}
			fmt.Fprintf(progress, "attack: %s\n", a.name)
			row := runAttack(ctx, cfg, a)
			fmt.Fprint(stdout, row.String())
		}
	}
	return 0
}

// selectAttacks parses -only.
func selectAttacks(only string) ([]attack, error) {
	if only == "" {
		return attacks, nil
	}
	var out []attack
	for _, f := range strings.Split(only, ",") {
		f = strings.TrimSpace(f)
		found := false
		for i, a := range attacks {
			if f == a.name || f == strconv.Itoa(i+1) {
				out = append(out, a)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("-only: no attack %q", f)
		}
	}
	return out, nil
}

// attack is one row of the table.
type attack struct {
	name string
	run  func(ctx context.Context, e *env) (notes string, err error)
}

// attacks are the rows, in order.
var attacks = []attack{
	{"proof-leak", proofLeak},
	{"ml-junk", memberlistJunk},
	{"idle-conns", idleConns},
	{"partial-streams", partialStreams},
	{"unread-replies", unreadReplies},
	{"nil-entries", nilEntries},
	{"big-rings", bigRings},
}

// env is what an attack gets: the node under attack and the harness.
type env struct {
	cfg    config
	spec   nodeSpec
	node   *nodeProc // replaced by restart
	legit  *client
	base   procSample // the node just before the attack
	stopMu sync.Once
	stop   func() // ends the measurement (sampler and legitimate calls)
}

// endMeasure ends the measurement; later calls do nothing.
func (e *env) endMeasure() { e.stopMu.Do(e.stop) }

// restart stops the node (SIGTERM, so it flushes its ring; killed after
// 10 s) and starts it again from the same flush file and port, then waits
// up to 15 s for it to answer. The measurement ends first: a deliberate
// restart is not a failure of the legitimate client. stopErr says how the
// stop went, readyErr whether the restarted node answers.
func (e *env) restart(ctx context.Context) (stopErr, readyErr error) {
	e.endMeasure()
	stopErr = e.node.stop(10 * time.Second)
	spec := e.spec
	spec.port = e.node.node.Port
	p, err := startNode(spec)
	if err != nil {
		return stopErr, err
	}
	e.node = p
	return stopErr, e.legit.waitReady(ctx, p, 15*time.Second)
}

// row is one line of the results.
type row struct {
	name         string
	baseRSS      int64 // kB
	baseFDs      int
	peak         peaks
	legit        legitStats
	notes        string
	measuredNode bool // false: the node never answered, nothing was measured
}

const tableHeader = "| attack | peak RSS MB | base RSS MB | VmHWM MB | peak fds (base) | peak threads | legit ok/failed | max legit ms | notes |\n" +
	"|---|---:|---:|---:|---:|---:|---:|---:|---|\n"

func (r row) String() string {
	notes := strings.NewReplacer("|", "/", "\n", "; ").Replace(r.notes)
	if !r.measuredNode {
		return fmt.Sprintf("| %s | - | - | - | - | - | - | - | %s |\n", r.name, notes)
	}
	mb := func(kb int64) string { return fmt.Sprintf("%.0f", float64(kb)/1024) }
	return fmt.Sprintf("| %s | %s | %s | %s | %d (%d) | %d | %d/%d | %d | %s |\n",
		r.name, mb(r.peak.rssKB), mb(r.baseRSS), mb(r.peak.hwmKB), r.peak.fds, r.baseFDs, r.peak.threads,
		r.legit.ok, r.legit.failed, r.legit.maxLatency.Milliseconds(), notes)
}

// runAttack starts a fresh node, runs one attack against it while
// measuring, and kills the node.
func runAttack(ctx context.Context, cfg config, a attack) row {
	r := row{name: a.name}
	if cfg.cookie == "" {
		var b [24]byte
		rand.Read(b[:])
		cfg.cookie = hex.EncodeToString(b[:]) // 48 characters
	}
	dir, err := os.MkdirTemp("", "attack-")
	if err != nil {
		r.notes = err.Error()
		return r
	}
	defer os.RemoveAll(dir)
	spec := nodeSpec{bin: cfg.bin, id: "victim", cookie: cfg.cookie, flush: filepath.Join(dir, "ring.flush")}
	p, err := startNode(spec)
	if err != nil {
		r.notes = err.Error()
		return r
	}
	e := &env{cfg: cfg, spec: spec, node: p}
	defer func() { e.node.kill() }()
	e.legit, err = newClient(ctx, "legit", cfg.cookie, p.node)
	if err != nil {
		r.notes = err.Error()
		return r
	}
	defer e.legit.Close()
	if err := e.legit.waitReady(ctx, p, 10*time.Second); err != nil {
		r.notes = err.Error()
		return r
	}
	if e.base, err = readProc(p.pid()); err != nil {
		r.notes = err.Error()
		return r
	}
	r.measuredNode, r.baseRSS, r.baseFDs = true, e.base.rssKB, e.base.fds

	mctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.peak = sample(mctx, p.pid()) })
	wg.Go(func() { r.legit = e.legit.run(mctx) })
	e.stop = func() { cancel(); wg.Wait() }
	defer e.endMeasure()

	actx, done := context.WithTimeout(ctx, cfg.maxAttack)
	defer done()
	notes, err := a.run(actx, e)
	// Keep measuring a little (unless the attack ended the measurement):
	// does the node recover, and do legitimate calls get through again?
	select {
	case <-ctx.Done():
	case <-mctx.Done():
	case <-time.After(cfg.after):
	}
	e.endMeasure()
	if err != nil {
		notes = strings.TrimSpace(notes + "; error: " + err.Error())
	}
	if !e.node.alive() {
		notes += fmt.Sprintf("; NODE DIED (%v): %s", e.node.err, e.node.lastLogLine("level="))
	}
	if r.legit.firstErr != nil {
		notes += fmt.Sprintf("; first legit failure: %v", r.legit.firstErr)
	}
	r.notes = strings.TrimPrefix(notes, "; ")
	return r
}

// loadAvg returns the first three fields of /proc/loadavg ("?" if absent):
// the figures depend on what else the machine runs.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
