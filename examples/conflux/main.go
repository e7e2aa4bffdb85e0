// Command conflux runs one node of a replicated counter: a cluster node
// (kernel, gossip ring) and a conflux store whose state is the counter's
// total, kept in Raft on disk and changed by one method, "add". It serves a
// small HTTP API so that clients can perform and read on any node.
//
// Walk-through: three nodes on one machine, in three terminals sharing a
// cookie (from `notp-cli keygen`):
//
//	go run ./examples/conflux -id a -port 7100 -http 127.0.0.1:8100 -dir /tmp/cf/a -cookie-file /tmp/notp.cookie
//	go run ./examples/conflux -id b -port 7101 -http 127.0.0.1:8101 -dir /tmp/cf/b -cookie-file /tmp/notp.cookie -meet a@127.0.0.1:7100
//	go run ./examples/conflux -id c -port 7102 -http 127.0.0.1:8102 -dir /tmp/cf/c -cookie-file /tmp/notp.cookie -meet a@127.0.0.1:7100
//
// Meeting puts all three in one ring; each runs the group "counter" with
// BootstrapExpect 3, so once the three see each other in the ring they
// form the group and elect a leader. Then, from any node:
//
//	curl -X POST '127.0.0.1:8101/add?n=5'   # Perform("add", 5): forwarded to the leader; returns once applied here
//	curl 127.0.0.1:8102/state               # the local committed state (may lag)
//	curl 127.0.0.1:8102/read                # a linearizable read (ReadIndex through the leader)
//	curl 127.0.0.1:8100/leader
//
// Kill the leader (Ctrl-C, or kill -9): the other two elect a new one
// within about a second and keep serving; the killed node restarted with
// the same flags comes back from its -dir (ring file and Raft log) and
// catches up. An add whose request returned 200 is never lost; one that
// failed with "unknown outcome" may or may not have happened — the
// client-id and seq query parameters (a request ID) make such a retry
// safe: /add?n=1&client=me&seq=7 applies at most once.
//
// The nodes may start in any order: -meet is retried in the background
// (logging each failure) until the peer answers.
//
// Flags: -id (required), -host (default 127.0.0.1), -port (default 7100),
// -http (HTTP API address, default 127.0.0.1:8100), -dir (data directory,
// required), -meet ID@HOST:PORT (a node to meet once started, retried
// until it answers), -cookie or
// -cookie-file or NOTP_COOKIE (the cluster cookie), -expect (BootstrapExpect,
// default 3).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/conflux"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/internal/cookiefile"
	"github.com/vmihailenco/msgpack/v5"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "conflux:", err)
		os.Exit(1)
	}
}

// Counter is the replicated state: the total and how many adds made it.
type Counter struct {
	Total int64 `msgpack:"t" json:"total"`
	Adds  int64 `msgpack:"a" json:"adds"`
}

// maxAdd bounds one add, so totals cannot overflow in any sane run.
const maxAdd = 1 << 20

var errTooLarge = errors.New("counter: add out of range")

func newStore(n *cluster.Node, dir string, expect int, log *slog.Logger) (*conflux.Store[Counter, int64], error) {
	return conflux.New(n, conflux.Config[Counter, int64]{
		Name: "counter",
		Methods: map[string]conflux.Method[Counter, int64]{
			"add": func(_ Counter, args []byte) (int64, error) {
				var d int64
				if err := msgpack.Unmarshal(args, &d); err != nil {
					return 0, err
				}
				if d < -maxAdd || d > maxAdd {
					return 0, errTooLarge
				}
				if d == 0 {
					return 0, conflux.ErrNoAction
				}
				return d, nil
			},
		},
		// The reducer re-checks what the method checked: it must accept
		// any action, since a method's check is advisory.
		Reduce: func(c Counter, d int64) Counter {
			if d < -maxAdd || d > maxAdd {
				return c
			}
			return Counter{Total: c.Total + d, Adds: c.Adds + 1}
		},
		Errors:          []error{errTooLarge},
		Storage:         conflux.OnDisk(filepath.Join(dir, "raft")),
		BootstrapExpect: expect,
		Logger:          log,
	})
}

func run() error {
	id := flag.String("id", "", "this node's id (required)")
	host := flag.String("host", "127.0.0.1", "address to listen on and that peers dial")
	port := flag.Int("port", 7100, "TCP port of the node")
	httpAddr := flag.String("http", "127.0.0.1:8100", "address of the HTTP API")
	dir := flag.String("dir", "", "data directory (ring file and Raft log; required)")
	meet := flag.String("meet", "", "a node to meet once started, ID@HOST:PORT")
	cookie := flag.String("cookie", "", "the cluster cookie (prefer -cookie-file or NOTP_COOKIE)")
	cookieFile := flag.String("cookie-file", "", "read the cluster cookie from this file")
	expect := flag.Int("expect", 3, "form the group once this many ring members run it")
	flag.Parse()
	if *id == "" || *dir == "" {
		flag.Usage()
		os.Exit(2)
	}
	secret, err := readCookie(*cookie, *cookieFile)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", *id)
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	node, err := cluster.New(cluster.Config{
		Node:   notp.Node{ID: *id, Host: *host, Port: *port},
		Cookie: secret,
		Gossip: gossip.Config{FlushPath: filepath.Join(*dir, "ring")},
		Logger: log,
	})
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := node.Start(ctx, "ring"); err != nil {
		return err
	}
	defer node.Stop(context.Background())
	if *meet != "" {
		stopMeeting, err := meetInBackground(ctx, node, *meet, log)
		if err != nil {
			return err
		}
		defer stopMeeting() // before node.Stop
	}
	store, err := newStore(node, *dir, *expect, log)
	if err != nil {
		return err
	}
	if err := store.Start(ctx); err != nil {
		return err
	}
	defer store.Stop(context.Background())
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api(store), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	log.Info("serving", "http", ln.Addr().String(), "port", node.Self().Port)
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	return srv.Shutdown(sctx)
}

// readCookie returns the cluster cookie: the flag's value, else the
// file's contents, else NOTP_COOKIE.
func readCookie(flagValue, file string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if file != "" {
		return cookiefile.Read(file)
	}
	return os.Getenv("NOTP_COOKIE"), nil
}

// meetInBackground meets the node named by addr (ID@HOST:PORT) in the
// background, retrying: the peer may start after this node (nodes started
// together come up in any order), and a node restarted from its ring file
// rejoins through the members it knows even while the peer is down. The
// returned function stops trying and waits for the goroutine.
func meetInBackground(ctx context.Context, node *cluster.Node, addr string, log *slog.Logger) (stop func(), err error) {
	peer, err := notp.ParseNode(addr)
	if err != nil {
		return nil, err
	}
	mctx, cancel := context.WithCancel(ctx)
	met := make(chan struct{})
	go func() {
		defer close(met)
		meetRetrying(mctx, node, peer, log)
	}()
	return func() { cancel(); <-met }, nil
}

// meetRetrying meets peer, retrying with a growing pause (up to 5 s)
// until it succeeds or ctx ends; each failure is logged.
func meetRetrying(ctx context.Context, node *cluster.Node, peer notp.Node, log *slog.Logger) {
	pause := 100 * time.Millisecond
	for {
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := node.Ring().Meet(mctx, peer)
		cancel()
		if err == nil {
			log.Info("met", "peer", peer.String())
			return
		}
		log.Warn("meet failed; retrying", "peer", peer.String(), "in", pause, "err", err)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// api is the HTTP API: POST /add?n=N[&client=C&seq=S], GET /state, GET
// /read, GET /leader. Errors answer 503 with the message; an unknown
// outcome answers 504.
func api(s *conflux.Store[Counter, int64]) http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any, err error) {
		switch {
		case errors.Is(err, conflux.ErrUnknownOutcome):
			http.Error(w, err.Error(), http.StatusGatewayTimeout)
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		default:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(v)
		}
	}
	mux.HandleFunc("POST /add", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if c := r.URL.Query().Get("client"); c != "" {
			seq, err := strconv.ParseUint(r.URL.Query().Get("seq"), 10, 64)
			if err != nil {
				http.Error(w, "bad seq", http.StatusBadRequest)
				return
			}
			ctx = conflux.WithRequestID(ctx, c, seq)
		}
		d, err := s.Perform(ctx, "add", n)
		reply(w, map[string]any{"added": d, "state": s.State()}, err)
	})
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		reply(w, s.State(), nil)
	})
	mux.HandleFunc("GET /read", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		st, err := s.Read(ctx, conflux.Linearizable)
		reply(w, st, err)
	})
	mux.HandleFunc("GET /leader", func(w http.ResponseWriter, r *http.Request) {
		l, ok := s.Leader()
		reply(w, map[string]any{"leader": l.ID, "known": ok}, nil)
	})
	return mux
}
