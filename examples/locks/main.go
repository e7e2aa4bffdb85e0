// Command locks runs a job on exactly one node at a time: every node of the
// cluster tries, every -every, to take the write lock -job (package dlm)
// and, when it gets it, runs the job once. The job writes to a shared
// ledger (a file standing for any storage the job changes) that checks
// the lock's fencing token: it refuses a write whose token is not larger
// than the last one it accepted, so a node that stalled past its lock's
// validity cannot overwrite the work of the node that took the lock next.
//
// Three processes on one machine, in three terminals, sharing a cookie and
// a ledger:
//
//	notp-cli keygen > /tmp/notp.cookie
//	go run ./examples/locks -id a -port 7031 -cookie-file /tmp/notp.cookie -dir /tmp/locks-a -ledger /tmp/ledger.txt
//	go run ./examples/locks -id b -port 7032 -cookie-file /tmp/notp.cookie -dir /tmp/locks-b -ledger /tmp/ledger.txt -meet a@127.0.0.1:7031
//	go run ./examples/locks -id c -port 7033 -cookie-file /tmp/notp.cookie -dir /tmp/locks-c -ledger /tmp/ledger.txt -meet a@127.0.0.1:7031
//
// Each prints a line per run ("run token=12 node=b") and the ledger holds
// one line per accepted run, tokens in increasing order. Stop one process
// (Ctrl-C) and restart it with the same -dir: the others go on running the
// job meanwhile (two of three replicas are a quorum), and the restarted
// node rejoins with its locks and fencing counter. The ledger's own lock is
// an flock, which the kernel releases when its holder dies, so a process
// killed in the middle of an append blocks no one.
//
// Flags:
//
//	-id ID            this node's id (required)
//	-host HOST        address to listen on and that peers dial (default 127.0.0.1)
//	-port N           TCP port (and UDP port of the failure detector) (default 7031)
//	-cookie-file PATH the cluster cookie file (else -cookie, else NOTP_COOKIE)
//	-cookie SECRET    the cluster cookie (shows in process lists)
//	-insecure         run without a cookie (nothing authenticated)
//	-meet ID@HOST:PORT
//	                  meet this node once started
//	-dir PATH         where the node keeps its ring and its lock replica (required)
//	-ledger PATH      the shared ledger file the job appends to (required)
//	-job NAME         the lock ID (default "nightly-job")
//	-every D          how often to try to run the job (default 2s)
//	-ttl D            the lock's TTL (default 10s)
//	-work D           how long one run works (default 500ms)
//	-runs N           stop after this node ran the job N times (default 0: never)
//
// Exit status: 0 after a clean stop, 1 on a failure, 2 for invalid flags.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/dlm"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/internal/cookiefile"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	id, host, cookie, meet, dir, ledger, job string
	port, runs                               int
	insecure                                 bool
	every, ttl, work                         time.Duration
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("locks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.id, "id", "", "this node's id (required)")
	fs.StringVar(&o.host, "host", "127.0.0.1", "address to listen on")
	fs.IntVar(&o.port, "port", 7031, "TCP and UDP port")
	cookieFile := fs.String("cookie-file", "", "cluster cookie file")
	fs.StringVar(&o.cookie, "cookie", "", "cluster cookie")
	fs.BoolVar(&o.insecure, "insecure", false, "run without a cookie")
	fs.StringVar(&o.meet, "meet", "", "ID@HOST:PORT of a node to meet")
	fs.StringVar(&o.dir, "dir", "", "directory for the ring and the lock replica (required)")
	fs.StringVar(&o.ledger, "ledger", "", "shared ledger file (required)")
	fs.StringVar(&o.job, "job", "nightly-job", "the lock ID")
	fs.DurationVar(&o.every, "every", 2*time.Second, "how often to try to run the job")
	fs.DurationVar(&o.ttl, "ttl", 10*time.Second, "lock TTL")
	fs.DurationVar(&o.work, "work", 500*time.Millisecond, "how long one run works")
	fs.IntVar(&o.runs, "runs", 0, "stop after this many runs (0: never)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.id == "" || o.dir == "" || o.ledger == "":
		return o, errors.New("-id, -dir and -ledger are required")
	case o.port < 1 || o.port > 65535:
		return o, fmt.Errorf("-port %d not in 1..65535", o.port)
	case o.every <= 0 || o.work < 0 || o.runs < 0:
		return o, errors.New("-every must be positive, -work and -runs not negative")
	case o.ttl < time.Millisecond || o.ttl > dlm.MaxTTL || o.work >= o.ttl:
		return o, fmt.Errorf("-ttl must be in [1ms, %v] and longer than -work", dlm.MaxTTL)
	}
	if o.cookie == "" && *cookieFile != "" {
		c, err := cookiefile.Read(*cookieFile)
		if err != nil {
			return o, err
		}
		o.cookie = c
	}
	if o.cookie == "" {
		o.cookie = os.Getenv("NOTP_COOKIE")
	}
	if o.cookie == "" && !o.insecure {
		return o, errors.New("no cookie: give -cookie-file, -cookie or NOTP_COOKIE, or -insecure")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "locks:", err)
		}
		return 2
	}
	if err := node(ctx, o, stdout, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))); err != nil {
		fmt.Fprintln(stderr, "locks:", err)
		return 1
	}
	return 0
}

// node runs one cluster node with its DLM and the job loop until ctx ends
// or -runs runs are done.
func node(ctx context.Context, o options, stdout io.Writer, log *slog.Logger) error {
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return err
	}
	n, err := cluster.New(cluster.Config{
		Node:     notp.Node{ID: o.id, Host: o.host, Port: o.port},
		Cookie:   o.cookie,
		Insecure: o.insecure,
		Gossip:   gossip.Config{FlushPath: filepath.Join(o.dir, "ring")},
		Logger:   log,
	})
	if err != nil {
		return err
	}
	if err := n.Start(ctx, "ring"); err != nil {
		return err
	}
	defer n.Stop(context.Background())
	d, err := dlm.New(n, dlm.Config{Dir: filepath.Join(o.dir, "dlm"), Retries: dlm.NoRetries, Logger: log})
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	defer d.Stop(context.Background())
	if o.meet != "" {
		peer, err := notp.ParseNode(o.meet)
		if err != nil {
			return fmt.Errorf("-meet: %w", err)
		}
		if err := n.Ring().Meet(ctx, peer); err != nil {
			return fmt.Errorf("meet %s: %w", peer.ID, err)
		}
	}
	t := time.NewTicker(o.every)
	defer t.Stop()
	for done := 0; o.runs == 0 || done < o.runs; {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		ran, err := runOnce(ctx, d, o, stdout)
		if err != nil {
			log.Warn("job run failed", "err", err)
		}
		if ran {
			done++
		}
	}
	return nil
}

// runOnce takes the job's write lock, runs the job if it got it, and
// releases the lock.
func runOnce(ctx context.Context, d *dlm.DLM, o options, stdout io.Writer) (bool, error) {
	lctx, cancel := context.WithTimeout(ctx, o.ttl)
	l, err := d.WLock(lctx, o.job, o.id, o.ttl)
	cancel()
	if err != nil {
		return false, nil // another node runs it, or no quorum now: try at the next tick
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.WUnlock(uctx, o.job, o.id) // a lost release lets the TTL free the lock
	}()
	if o.work >= l.Validity {
		return false, fmt.Errorf("only %v of the lock left, the job needs %v", l.Validity, o.work)
	}
	start := time.Now()
	time.Sleep(o.work) // the job's work
	if err := appendFenced(o.ledger, l.Token, fmt.Sprintf("%d %s %d %d", l.Token, o.id, start.UnixNano(), time.Now().UnixNano())); err != nil {
		return false, err
	}
	fmt.Fprintf(stdout, "run token=%d node=%s\n", l.Token, o.id)
	return true, nil
}

// errStaleToken is the ledger refusing a write fenced by an old token.
var errStaleToken = errors.New("ledger: stale fencing token")

// appendFenced appends line to the ledger if token is larger than the
// token of its last line: the check the guarded resource makes. A lock on
// a file beside the ledger (lockLedger) serialises the check and the
// append across processes.
func appendFenced(path string, token uint64, line string) error {
	unlock, err := lockLedger(path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	last, err := lastToken(path)
	if err != nil {
		return err
	}
	if token <= last {
		return fmt.Errorf("%w: %d after %d", errStaleToken, token, last)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// lastToken is the token of the ledger's last line, 0 for none.
func lastToken(path string) (uint64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var last uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		tok, _, _ := strings.Cut(sc.Text(), " ")
		if v, err := strconv.ParseUint(tok, 10, 64); err == nil {
			last = v
		}
	}
	return last, sc.Err()
}
