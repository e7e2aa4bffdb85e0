// Command node runs one cluster node for operators: a kernel on one port,
// the gossip ring, the command server that notp-cli talks to, and an "echo"
// actor. It logs ring events to stderr and stops cleanly (without leaving
// the ring) on SIGINT or SIGTERM.
//
// Three nodes on one machine, in three terminals sharing one cookie:
//
//	notp-cli keygen > /tmp/notp.cookie
//	go run ./examples/node -id a -port 7022 -cookie-file /tmp/notp.cookie -flush /tmp/a.ring
//	go run ./examples/node -id b -port 7023 -cookie-file /tmp/notp.cookie -flush /tmp/b.ring -meet a@127.0.0.1:7022
//	go run ./examples/node -id c -port 7024 -cookie-file /tmp/notp.cookie -flush /tmp/c.ring -meet a@127.0.0.1:7022
//
// and drive them from a fourth with notp-cli:
//
//	notp-cli -I a -H 127.0.0.1 -p 7022 --key-file /tmp/notp.cookie nodes
//	notp-cli -I a -H 127.0.0.1 -p 7022 --key-file /tmp/notp.cookie ownership
//
// Flags:
//
//	-id ID          this node's id (required; no '@' or whitespace)
//	-host HOST      the address to listen on and that peers dial (default 127.0.0.1)
//	-port N         the TCP port (and UDP port of the failure detector), 1..65535 (default 7022)
//	-cookie-file PATH
//	                read the cluster cookie from PATH (one trailing newline dropped)
//	-cookie SECRET  the cluster cookie (shows in process lists: prefer -cookie-file
//	                or NOTP_COOKIE); at least 16 bytes, see notp-cli keygen
//	-insecure       run without a cookie: nothing is authenticated (a warning is
//	                logged); required when no cookie is given
//	-ring ID        the ring to start in (default "ring"); must match the flush file's ring
//	-flush PATH     persist the ring to PATH and reload it at start (a restarted node rejoins)
//	-meet ID@HOST:PORT
//	                meet this node once started (its id is needed to address it;
//	                notp.ParseNode's form, as printed by notp-cli's get)
//	-meet SEED[,SEED...]
//	                or find the cluster through seeds (cluster.Config.Seeds):
//	                host:port, DNS names resolving to several addresses (with
//	                -port when they have none) and SRV names such as
//	                _notp._tcp.notp.default.svc.cluster.local; retried with
//	                backoff until a node there answers, which is then met
//	-log LEVEL      debug, info (default), warn or error
//	-tls-cert FILE, -tls-key FILE
//	                serve and dial over mutual TLS with this PEM certificate and key
//	-tls-ca FILE    PEM CAs that peers' and clients' certificates must chain to
//	                (default: -tls-cert itself, for one self-signed certificate)
//	                The certificate files are re-read when they change (checked at
//	                most once a minute, on handshakes) and at once on SIGHUP;
//	                open connections keep the certificate they were made with.
//	                The CAs are read once, at start: renew from a CA that -tls-ca
//	                names. A self-signed certificate (no -tls-ca) that is replaced
//	                is not trusted by nodes still holding the old one, so replacing
//	                it takes a restart of every node.
//	-busy-poll D    kernel.Config.BusyPoll, e.g. 50us (default 0: adaptive)
//	-metrics HOST:PORT
//	                serve Prometheus metrics at http://HOST:PORT/metrics
//	                (cluster.Config.MetricsAddr; default "": off), the echo
//	                actor's included; unauthenticated, so bind it to loopback
//	                or a private interface
//
// The cookie comes from -cookie when given, else from -cookie-file, else
// from the NOTP_COOKIE environment variable. Without any, the node refuses
// to start unless -insecure says so.
//
// Exit status: 0 after a clean stop, 1 when the node fails to start or
// stop, 2 for invalid flags.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/discover"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/internal/cookiefile"
	"github.com/notp-go/notp/kernel"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

// options are the parsed and validated flags.
type options struct {
	node     notp.Node
	cookie   string
	ring     string
	flush    string
	meet     *notp.Node // -meet id@host:port
	seeds    []string   // -meet seeds (host:port, DNS or SRV names): cluster.Config.Seeds
	level    slog.Level
	insecure bool                 // -insecure: no cookie, nothing authenticated
	tls      *tls.Config          // -tls-cert/-tls-key/-tls-ca; nil = plain TCP
	certs    *kernel.CertReloader // serves -tls-cert/-tls-key, re-read when they change or on SIGHUP
	busyPoll time.Duration        // -busy-poll
	metrics  string               // -metrics: host:port of the metrics endpoint; "" = off
}

// errUsage marks flag errors (exit status 2).
var errUsage = errors.New("usage")

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "this node's id (required)")
	host := fs.String("host", "127.0.0.1", "host to listen on and that peers dial")
	port := fs.Int("port", 7022, "TCP port (and UDP port of the failure detector), 1..65535")
	cookie := fs.String("cookie", "", "cluster cookie (shows in process lists: prefer -cookie-file or NOTP_COOKIE)")
	cookieFile := fs.String("cookie-file", "", "file holding the cluster cookie")
	insecure := fs.Bool("insecure", false, "run without a cookie: nothing is authenticated")
	ring := fs.String("ring", "ring", "ring id to start in")
	flush := fs.String("flush", "", "file to persist the ring to and reload it from")
	meet := fs.String("meet", "", "node to meet once started, as id@host:port, or seeds to find one: host:port, DNS or SRV names, comma-separated")
	level := fs.String("log", "info", "log level: debug, info, warn or error")
	certFile := fs.String("tls-cert", "", "PEM certificate: serve and dial over TLS with it (needs -tls-key)")
	keyFile := fs.String("tls-key", "", "PEM private key of -tls-cert")
	caFile := fs.String("tls-ca", "", "PEM CA certificates that peers' and clients' certificates must chain to (default: -tls-cert itself)")
	busyPoll := fs.Duration("busy-poll", 0, "kernel.Config.BusyPoll: poll dry connections this long before sleeping (0..1s; 0 = adaptive)")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9100; unauthenticated)")
	if err := fs.Parse(args); err != nil {
		return options{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	o := options{node: notp.Node{ID: *id, Host: *host, Port: *port}, ring: *ring, flush: *flush,
		busyPoll: *busyPoll, insecure: *insecure, metrics: *metricsAddr}
	switch {
	case *id == "":
		return o, fmt.Errorf("%w: -id is required", errUsage)
	case *port < 1 || *port > notp.MaxPort:
		return o, fmt.Errorf("%w: -port %d: want 1..%d", errUsage, *port, notp.MaxPort)
	case *ring == "":
		return o, fmt.Errorf("%w: -ring must not be empty", errUsage)
	case *busyPoll < 0 || *busyPoll > time.Second:
		return o, fmt.Errorf("%w: -busy-poll %v: want 0..1s", errUsage, *busyPoll)
	}
	if err := o.node.Validate(); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	if err := checkHostPort(o.metrics); err != nil {
		return o, fmt.Errorf("%w: -metrics %q: %w (want host:port, e.g. 127.0.0.1:9100)", errUsage, o.metrics, err)
	}
	var err error
	if o.cookie, err = pickCookie(fs, *cookie, *cookieFile, *insecure); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	if strings.Contains(*meet, "@") {
		n, err := notp.ParseNode(*meet)
		if err != nil {
			return o, fmt.Errorf("%w: -meet: %w (want id@host:port)", errUsage, err)
		}
		o.meet = &n
	} else if *meet != "" {
		o.seeds = strings.Split(*meet, ",")
		f, err := discover.New(discover.Config{DefaultPort: *port})
		if err == nil {
			err = f.Check(o.seeds)
		}
		if err != nil {
			return o, fmt.Errorf("%w: -meet: %w (want id@host:port, or seeds: host:port, DNS or SRV names)", errUsage, err)
		}
	}
	if err := o.level.UnmarshalText([]byte(*level)); err != nil {
		return o, fmt.Errorf("%w: -log %q: want debug, info, warn or error", errUsage, *level)
	}
	tc, certs, err := tlsConfig(*certFile, *keyFile, *caFile)
	if err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	o.tls, o.certs = tc, certs
	return o, nil
}

// checkHostPort accepts "" or host:port with a numeric port 1..65535.
func checkHostPort(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > notp.MaxPort {
		return fmt.Errorf("port %q is not 1..%d", port, notp.MaxPort)
	}
	return nil
}

// pickCookie returns the cookie from -cookie if given, else -cookie-file,
// else $NOTP_COOKIE. An empty result needs -insecure, and -insecure with a
// cookie is a contradiction.
func pickCookie(fs *flag.FlagSet, cookie, file string, insecure bool) (string, error) {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "cookie" })
	switch {
	case set:
	case file != "":
		c, err := cookiefile.Read(file)
		if err != nil {
			return "", fmt.Errorf("-cookie-file: %w", err)
		}
		cookie = c
	default:
		cookie = os.Getenv(cookiefile.EnvVar)
	}
	switch {
	case cookie == "" && !insecure:
		return "", fmt.Errorf("no cookie: give -cookie-file or %s (generate one with `notp-cli keygen`), or -insecure to run unauthenticated", cookiefile.EnvVar)
	case cookie != "" && insecure:
		return "", errors.New("-insecure and a cookie contradict each other")
	}
	return cookie, nil
}

// certCheckInterval is how often a handshake may check the certificate
// files for a change (SIGHUP reloads at once).
const certCheckInterval = time.Minute

// tlsConfig builds the node's mutual-TLS config: it serves certFile, dials
// with it, and accepts peers and clients whose certificates chain to the
// CAs in caFile (certFile itself when caFile is empty, for one self-signed
// certificate shared by the cluster). The certificate comes from a
// kernel.CertReloader, which re-reads the files when they change. nil when
// no file is given.
func tlsConfig(certFile, keyFile, caFile string) (*tls.Config, *kernel.CertReloader, error) {
	if certFile == "" && keyFile == "" && caFile == "" {
		return nil, nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, nil, errors.New("-tls-cert and -tls-key go together (and -tls-ca needs them)")
	}
	certs, err := kernel.NewCertReloader(certFile, keyFile, certCheckInterval)
	if err != nil {
		return nil, nil, fmt.Errorf("-tls-cert/-tls-key: %w", err)
	}
	if caFile == "" {
		caFile = certFile
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, fmt.Errorf("-tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("-tls-ca: no PEM certificate in %s", caFile)
	}
	tc := &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	}
	certs.Apply(tc)
	return tc, certs, nil
}

// reloadOnSignal reloads the TLS certificate files each time hup delivers
// (SIGHUP), until ctx ends.
func reloadOnSignal(ctx context.Context, hup <-chan os.Signal, certs *kernel.CertReloader, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if err := certs.Reload(); err != nil {
			log.Warn("tls certificate reload failed; keeping the current one", "err", err)
		} else {
			log.Info("tls certificate reloaded", "reloads", certs.Reloads())
		}
	}
}

// run is the program; it returns the exit status.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // -h: flag printed the usage
	}
	if err != nil {
		fmt.Fprintln(stderr, "node:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.level}))
	if err := serve(ctx, o, log); err != nil {
		log.Error("node failed", "err", err)
		return 1
	}
	return 0
}

// serve runs the node until ctx ends.
func serve(ctx context.Context, o options, log *slog.Logger) error {
	n, err := cluster.New(cluster.Config{
		Node: o.node, Cookie: o.cookie, Insecure: o.insecure, Logger: log,
		TLS: o.tls, Kernel: kernel.Config{BusyPoll: o.busyPoll}, MetricsAddr: o.metrics,
		Gossip: gossip.Config{FlushPath: o.flush}, Seeds: o.seeds,
	})
	if err != nil {
		return err
	}
	echo, err := genserver.New(n.Kernel(), genserver.Config{Name: "echo", Logger: log})
	if err != nil {
		return err
	}
	echo.Handle("echo", func(_ context.Context, r genserver.Request) ([]byte, error) { return r.Data, nil })
	if err := n.Metrics().Watch(echo); err != nil {
		return err
	}

	events, cancel := n.Ring().Subscribe(256)
	defer cancel()
	if o.certs != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		hupCtx, stopHup := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); reloadOnSignal(hupCtx, hup, o.certs, log) }()
		defer func() { stopHup(); <-done }()
	}
	if err := n.Start(ctx, o.ring); err != nil {
		return err
	}
	if err := echo.Start(ctx); err != nil {
		_ = n.Stop(context.Background())
		return err
	}
	if a := n.MetricsAddr(); a != nil {
		log.Info("serving metrics", "url", "http://"+a.String()+"/metrics")
	}
	log.Info("node ready", "node", n.Self().String(), "ring", n.Ring().RingID())
	if o.meet != nil {
		meetCtx, done := context.WithTimeout(ctx, 10*time.Second)
		if err := n.Ring().Meet(meetCtx, *o.meet); err != nil {
			log.Warn("meet failed; retry with notp-cli meet", "seed", o.meet.String(), "err", err)
		} else {
			log.Info("met", "seed", o.meet.String())
		}
		done()
	}
	logEvents(ctx, log, events)

	log.Info("stopping")
	stopCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	return errors.Join(echo.Stop(stopCtx), n.Stop(stopCtx))
}

// logEvents logs ring events until ctx ends.
func logEvents(ctx context.Context, log *slog.Logger, events <-chan gossip.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			ids := make([]string, len(ev.Nodes))
			for i, nd := range ev.Nodes {
				ids[i] = nd.String()
			}
			log.Info("ring event", "kind", ev.Kind.String(), "nodes", strings.Join(ids, ","), "ring", ev.RingID)
		}
	}
}
