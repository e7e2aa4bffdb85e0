// Command actors runs two notp nodes that talk through the kernel: node "b"
// hosts a genserver "kv" (a string map plus counters), node "a" calls and
// casts to it over an authenticated TCP connection, then both print what
// the kernel counted.
//
// In one process (both nodes on 127.0.0.1, random ports, a fixed cookie;
// the output is the same on every run):
//
//	go run ./examples/actors
//
// In two processes, in two terminals (use the same cookie on both, e.g.
// from "notp-cli keygen > /tmp/notp.cookie"; the client's node id must
// differ from the server's):
//
//	go run ./examples/actors -role server -addr 127.0.0.1:7022 -cookie "$(cat /tmp/notp.cookie)"
//	go run ./examples/actors -role client -addr 127.0.0.1:7022 -cookie "$(cat /tmp/notp.cookie)"
//
// The server runs until interrupted (Ctrl-C) and then prints its counters;
// the client runs the same calls as the one-process mode and exits. A
// client with the wrong cookie is refused by the hello and never reaches
// the server's handlers (see the server's RejectedHandshake counter).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/kernel"
)

// codeNotFound is the error code "get" answers for a missing key.
const codeNotFound = "NOT_FOUND"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "actors:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

type options struct {
	role   string // "", "server" or "client"
	addr   string // the server's host:port
	cookie string
	id     string // this node's id ("b" for the server, "a" for a client)
	server string // the server's node id (client role)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("actors", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.role, "role", "", `"server" or "client" for two processes; empty runs both nodes in this process`)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:7022", "the server node's host:port (two-process mode)")
	fs.StringVar(&o.cookie, "cookie", "actors-example-cookie", "the shared cluster secret")
	fs.StringVar(&o.id, "id", "", `this node's id (default "b" for the server, "a" for the client)`)
	fs.StringVar(&o.server, "server-id", "b", "the server node's id (client role)")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() != 0 {
		return o, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	switch o.role {
	case "", "server", "client":
	default:
		return o, fmt.Errorf("%w: -role must be server or client, not %q", errUsage, o.role)
	}
	if o.cookie == "" {
		return o, fmt.Errorf("%w: -cookie must not be empty", errUsage)
	}
	if o.id == "" {
		o.id = "a"
		if o.role == "server" {
			o.id = "b"
		}
	}
	if o.role == "client" && o.id == o.server {
		return o, fmt.Errorf("%w: the client's -id must differ from -server-id %q", errUsage, o.server)
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	switch o.role {
	case "server":
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
		return serve(ctx, o, stdout)
	case "client":
		host, port, err := splitAddr(o.addr, false)
		if err != nil {
			return err
		}
		a, err := startNode(ctx, o.id, "127.0.0.1", 0, o.cookie)
		if err != nil {
			return err
		}
		defer a.Close()
		if err := client(ctx, a, notp.Node{ID: o.server, Host: host, Port: port}, stdout); err != nil {
			return err
		}
		printStats(stdout, "a", a.Stats())
		return nil
	}
	return oneProcess(ctx, o.cookie, stdout)
}

// splitAddr parses -addr; port 0 (any free port) only when listening.
func splitAddr(addr string, listen bool) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: -addr: %w", errUsage, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > notp.MaxPort || port == 0 && !listen {
		return "", 0, fmt.Errorf("%w: -addr: bad port %q", errUsage, p)
	}
	return host, port, nil
}

// oneProcess starts both nodes on loopback, runs the client against the
// server and prints both nodes' counters.
func oneProcess(ctx context.Context, cookie string, out io.Writer) error {
	b, err := startNode(ctx, "b", "127.0.0.1", 0, cookie)
	if err != nil {
		return err
	}
	defer b.Close()
	kv, err := startKV(ctx, b)
	if err != nil {
		return err
	}
	a, err := startNode(ctx, "a", "127.0.0.1", 0, cookie)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := client(ctx, a, b.Self(), out); err != nil {
		return err
	}
	if err := kv.Stop(ctx); err != nil {
		return err
	}
	printStats(out, "a", a.Stats())
	printStats(out, "b", b.Stats())
	return nil
}

// serve runs node b with the kv server until ctx ends. Its first line of
// output says where it listens.
func serve(ctx context.Context, o options, out io.Writer) error {
	host, port, err := splitAddr(o.addr, true)
	if err != nil {
		return err
	}
	b, err := startNode(ctx, o.id, host, port, o.cookie)
	if err != nil {
		return err
	}
	defer b.Close()
	kv, err := startKV(ctx, b)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "node %s serving \"kv\" on %s; Ctrl-C stops\n", b.Self().ID, b.Addr())
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv.Stop(stopCtx)
	printStats(out, b.Self().ID, b.Stats())
	return nil
}

func startNode(ctx context.Context, id, host string, port int, cookie string) (*kernel.Kernel, error) {
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: id, Host: host, Port: port}, Cookie: cookie})
	if err != nil {
		return nil, err
	}
	if err := k.Start(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// putReq is the request of the "put" event.
type putReq struct {
	Key, Value string
}

// startKV starts the genserver "kv" on k. Its state is touched only by its
// handlers, which run one at a time on the actor goroutine: no locks.
func startKV(ctx context.Context, k *kernel.Kernel) (*genserver.Server, error) {
	s, err := genserver.New(k, genserver.Config{Name: "kv"})
	if err != nil {
		return nil, err
	}
	values := map[string]string{}
	counters := map[string]int{}
	genserver.HandleTyped(s, "put", func(_ context.Context, r putReq, _ kernel.From) (string, error) {
		old := values[r.Key]
		values[r.Key] = r.Value
		return old, nil
	})
	genserver.HandleTyped(s, "get", func(_ context.Context, key string, _ kernel.From) (string, error) {
		v, ok := values[key]
		if !ok {
			return "", kernel.Errorf(codeNotFound, "no key %q", key)
		}
		return v, nil
	})
	genserver.HandleTyped(s, "incr", func(_ context.Context, key string, _ kernel.From) (int, error) {
		counters[key]++
		return counters[key], nil
	})
	genserver.HandleTyped(s, "count", func(_ context.Context, key string, _ kernel.From) (int, error) {
		return counters[key], nil
	})
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// client connects a to the server node and talks to its "kv".
func client(ctx context.Context, a *kernel.Kernel, srv notp.Node, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.Connect(srv); err != nil {
		return err
	}
	// Connect is asynchronous; a ping waits for the authenticated link.
	if err := a.Ping(ctx, srv); err != nil {
		return fmt.Errorf("ping %s at %s: %w", srv.ID, srv.Addr(), err)
	}
	fmt.Fprintf(out, "%s -> %s: ping ok\n", a.Self().ID, srv.ID)
	kv := genserver.Target{Name: "kv", Node: srv}

	old, err := genserver.Call[string](ctx, a, kv, "put", putReq{"greeting", "hello"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "call put greeting=hello -> previous %q\n", old)
	old, err = genserver.Call[string](ctx, a, kv, "put", putReq{"greeting", "hello, world"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "call put greeting=\"hello, world\" -> previous %q\n", old)
	v, err := genserver.Call[string](ctx, a, kv, "get", "greeting")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "call get greeting -> %q\n", v)

	// Casts do not wait. They travel on the same connection as the call
	// after them and the actor handles messages in order, so the count
	// sees all of them.
	const casts = 1000
	for range casts {
		if err := genserver.Cast(a, kv, "incr", "hits"); err != nil {
			return err
		}
	}
	n, err := genserver.Call[int](ctx, a, kv, "count", "hits")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cast incr hits x%d, then call count hits -> %d\n", casts, n)

	// Errors come back as *kernel.RemoteError, matched by code.
	_, err = genserver.Call[string](ctx, a, kv, "get", "missing")
	fmt.Fprintf(out, "call get missing -> NOT_FOUND: %t (%v)\n", errors.Is(err, &kernel.RemoteError{Code: codeNotFound}), err)
	_, err = genserver.Call[string](ctx, a, kv, "delete", "greeting")
	fmt.Fprintf(out, "call delete (no such event) -> %s: %t\n", genserver.CodeUnknownEvent,
		errors.Is(err, &kernel.RemoteError{Code: genserver.CodeUnknownEvent}))
	_, err = a.Call(ctx, srv, "nobody", nil)
	fmt.Fprintf(out, "kernel call to an unregistered name -> %s: %t\n", kernel.CodeUnknownName,
		errors.Is(err, &kernel.RemoteError{Code: kernel.CodeUnknownName}))
	return nil
}

// printStats prints the counters that do not depend on timing (how many
// records the batching produced does, so it is left out).
func printStats(out io.Writer, node string, st kernel.Stats) {
	fmt.Fprintf(out, "stats %s: frames out %d, frames in %d, rejected %d, casts to unknown names %d, late replies %d\n",
		node, st.FramesOut, st.FramesIn,
		st.RejectedBadMAC+st.RejectedBadFrame+st.RejectedTooLarge+st.RejectedHandshake+st.RejectedUnknownProto,
		st.CastsUnknownName, st.LateReplies)
}
