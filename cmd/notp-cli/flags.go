package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
)

// Defaults of the flags (notp's ncl, plus --timeout).
const (
	defaultPort    = 7022
	defaultTimeout = 5 * time.Second
)

// options are the parsed command line.
type options struct {
	target  notp.Node     // -I, -H, -p
	key     string        // -a: the cluster cookie; empty = insecure
	timeout time.Duration // --timeout: bound of each request
	tls     *tls.Config   // --tls*: nil = plain TCP
	format  string        // --format: "text", "json" or "" (the mode's default)
	help    bool          // -h, --help
	cmd     string        // the command, empty for the shell
	args    []string      // the command's arguments
}

// portFlag is a flag.Value accepting only a decimal port in 1..65535.
type portFlag struct{ p *int }

func (f portFlag) String() string {
	if f.p == nil {
		return ""
	}
	return fmt.Sprint(*f.p)
}

func (f portFlag) Set(s string) error {
	p, err := cmdline.ParsePort(s)
	if err != nil {
		return err
	}
	*f.p = p
	return nil
}

// errFlags wraps every command-line parse failure (a usage error).
var errFlags = errors.New("bad flags")

// parseFlags reads the flags and splits off the command and its
// arguments. The flag package stops at the first non-flag argument, so
// flags come before the command; what follows belongs to the command.
func parseFlags(args []string) (options, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	o := options{target: notp.Node{ID: host, Host: host, Port: defaultPort}, timeout: defaultTimeout}
	if err := envDefaults(&o.target); err != nil {
		return o, fmt.Errorf("%w: %w", errFlags, err)
	}
	fs := flag.NewFlagSet("notp-cli", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // we print our own messages
	for _, name := range []string{"I", "instance"} {
		fs.StringVar(&o.target.ID, name, o.target.ID, "")
	}
	for _, name := range []string{"H", "hostname"} {
		fs.StringVar(&o.target.Host, name, o.target.Host, "")
	}
	for _, name := range []string{"p", "port"} {
		fs.Var(portFlag{&o.target.Port}, name, "")
	}
	var ks keySources
	for _, name := range []string{"a", "key"} {
		fs.StringVar(&ks.key, name, "", "")
	}
	fs.StringVar(&ks.file, "key-file", "", "")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "")
	fs.Func("format", "", func(v string) (err error) { o.format, err = cmdline.ParseFormat(v); return err })
	var tf tlsFlags
	fs.BoolVar(&tf.on, "tls", false, "")
	fs.StringVar(&tf.ca, "tls-ca", "", "")
	fs.StringVar(&tf.cert, "tls-cert", "", "")
	fs.StringVar(&tf.key, "tls-key", "", "")
	fs.StringVar(&tf.serverName, "tls-server-name", "", "")
	fs.BoolVar(&tf.insecure, "tls-insecure-skip-verify", false, "")
	for _, name := range []string{"h", "help"} {
		fs.BoolVar(&o.help, name, false, "")
	}
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %s", errFlags, strings.TrimPrefix(err.Error(), "flag "))
	}
	if o.help {
		return o, nil
	}
	fs.Visit(func(f *flag.Flag) { ks.keySet = ks.keySet || f.Name == "a" || f.Name == "key" })
	ks.env = os.Getenv(envCookie)
	if rest := fs.Args(); len(rest) == 0 || rest[0] != "keygen" {
		if o.key, err = ks.resolve(); err != nil {
			return o, fmt.Errorf("%w: %w", errFlags, err)
		}
	}
	if o.timeout <= 0 {
		return o, fmt.Errorf("%w: --timeout must be positive, got %v", errFlags, o.timeout)
	}
	if err := o.target.Validate(); err != nil {
		return o, fmt.Errorf("%w: target node (-I, -H, -p): %w", errFlags, err)
	}
	tc, err := tf.config()
	if err != nil {
		return o, fmt.Errorf("%w: %w", errFlags, err)
	}
	o.tls = tc
	if rest := fs.Args(); len(rest) > 0 {
		o.cmd, o.args = rest[0], rest[1:]
	}
	return o, nil
}

// The environment variables that give the target's defaults.
const (
	envInstance = "NOTP_INSTANCE"
	envHost     = "NOTP_HOST"
	envPort     = "NOTP_PORT"
)

// maxEnvLen bounds what is read from an environment variable.
const maxEnvLen = 1024

// envDefaults sets the target's id, host and port from NOTP_INSTANCE,
// NOTP_HOST and NOTP_PORT when they are set and not empty; flags override
// them. A malformed value is an error (the flags' checks apply to the
// result too).
func envDefaults(t *notp.Node) error {
	for _, e := range []struct {
		name string
		dst  *string
	}{{envInstance, &t.ID}, {envHost, &t.Host}} {
		if v := os.Getenv(e.name); v != "" {
			if len(v) > maxEnvLen {
				return fmt.Errorf("$%s: %d bytes, at most %d", e.name, len(v), maxEnvLen)
			}
			*e.dst = v
		}
	}
	if v := os.Getenv(envPort); v != "" {
		p, err := cmdline.ParsePort(v)
		if err != nil {
			return fmt.Errorf("$%s: %w", envPort, err)
		}
		t.Port = p
	}
	return nil
}

// flagHelp documents the flags in the order usage shows them.
var flagHelp = [][2]string{
	{"-I, --instance <id>", "Unique instance identifier of the node being connected to. (default: $NOTP_INSTANCE, else this host's name)"},
	{"-H, --hostname <host>", "Server hostname of the node being connected to. (default: $NOTP_HOST, else this host's name)"},
	{"-p, --port <port>", fmt.Sprintf("Server port of the node being connected to, 1-65535. (default: $NOTP_PORT, else %d)", defaultPort)},
	{"-a, --key <cookie>", "Distributed cookie to use for signing requests against the connecting node. Empty means no cookie, for nodes that run without one. It shows in process lists: prefer --key-file or $NOTP_COOKIE. (default: --key-file, else $NOTP_COOKIE, else \"\")"},
	{"    --key-file <file>", "Read the cookie from a file (at most 4 KiB; one trailing newline is dropped). Used when -a/--key is not given."},
	{"    --format text|json", "How replies are printed: json (the default of one-shot mode; the shell draws ownership as a chart) or text (readable tables). Every command also takes --format after its name."},
	{"    --timeout <duration>", fmt.Sprintf("Bound of each request, connecting included, e.g. 500ms or 10s. (default %v)", defaultTimeout)},
	{"    --tls", "Connect over TLS (for nodes started with a TLS config), verifying the node's certificate against the system's roots. Any other --tls-* flag implies it."},
	{"    --tls-ca <file>", "PEM file of the CA certificates to verify the node's certificate with, instead of the system's roots."},
	{"    --tls-cert <file>", "PEM certificate to present to the node (for nodes that require client certificates); needs --tls-key."},
	{"    --tls-key <file>", "PEM private key of --tls-cert."},
	{"    --tls-server-name <name>", "Name to verify the node's certificate against. (default: the -H host)"},
	{"    --tls-insecure-skip-verify", "Do not verify the node's certificate (testing only: an impostor on the path would go unnoticed, though it still cannot forge the cookie's proofs)."},
	{"-h, --help", "Show this help."},
}

// writeUsage prints the full usage text.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: notp-cli [flags] [command [args...]]

notp-cli sends operator commands to the command server of a notp node. With a
command it prints the reply (as JSON unless --format text) and exits; without
one it starts an interactive shell.

Flags:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range flagHelp {
		fmt.Fprintf(tw, "  %s\t%s\n", f[0], f[1])
	}
	tw.Flush()
	fmt.Fprint(w, "\nCommands:\n")
	writeCommandList(w, false)
	fmt.Fprint(w, `
Options of the commands that take them (anywhere after the command):
  -f, --force       Execute this command before any existing message streams on
                    this node's gossip processor. Defaults to false.
  -w, --weight <n>  Number of virtual nodes to assign to the nodes being
                    inserted. Defaults to the `+"`rfactor`"+` of the session node.
                    update takes the weight as its fourth argument instead.
  --format text|json
                    How to print this command's reply (every command).
  --status <health>, --id <regexp>
                    nodes (members): keep the nodes of one health, or whose id
                    matches the regular expression.
  --group <name>    raft: the conflux group, when the node runs several.

"notp-cli help <command>" shows the usage of one command.

Exit status: 0 when the reply is {"ok": true, ...}; 1 when it is
{"ok": false, ...}, the node is unreachable or the request timed out (an
ok:false JSON says why); 2 on a usage error (nothing is sent).
`)
}

// writeCommandList prints one line per command: synopsis and summary.
// The shell adds its own commands.
func writeCommandList(w io.Writer, shell bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i := range cmdline.Specs {
		fmt.Fprintf(tw, "  %s\t%s\n", cmdline.Specs[i].Brief(), cmdline.Specs[i].Summary())
	}
	fmt.Fprintf(tw, "  %s\t%s\n", "monitor [--level <l>]", monitorHelp)
	fmt.Fprintf(tw, "  %s\t%s\n", "keygen", keygenHelp)
	if shell {
		fmt.Fprintf(tw, "  %s\t%s\n", "help [command]", "Shows the commands, or the usage of one command.")
		fmt.Fprintf(tw, "  %s\t%s\n", "exit", "Exits the shell (as does Ctrl-D).")
	}
	tw.Flush()
}

// writeCommandHelp prints the usage and full description of one command.
func writeCommandHelp(w io.Writer, s *cmdline.Spec) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", s.Synopsis(), s.Desc)
	if s.Opts == 0 && s.WeightHelp == "" {
		return
	}
	fmt.Fprint(w, "\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if s.Opts&cmdline.OptForce != 0 {
		fmt.Fprintf(tw, "  %s\t%s\n", "-f, --force", cmdline.ForceHelp)
	}
	if s.Opts&cmdline.OptGroup != 0 {
		fmt.Fprintf(tw, "  %s\t%s\n", "--group <name>", cmdline.GroupHelp)
	}
	switch {
	case s.Opts&cmdline.OptWeight != 0:
		fmt.Fprintf(tw, "  %s\t%s\n", "-w, --weight <n>", s.WeightHelp)
	case s.WeightHelp != "":
		fmt.Fprintf(tw, "  %s\t%s\n", "weight", s.WeightHelp)
	}
	tw.Flush()
}

// tlsFlags are the --tls* flags.
type tlsFlags struct {
	on, insecure              bool
	ca, cert, key, serverName string
}

// config builds the TLS client configuration the flags ask for, or nil
// when none was given. Files are read here, so a missing or malformed one
// is a usage error and nothing is sent.
func (f tlsFlags) config() (*tls.Config, error) {
	if !f.on && !f.insecure && f.ca == "" && f.cert == "" && f.key == "" && f.serverName == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.serverName, InsecureSkipVerify: f.insecure}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca: no PEM certificate in %s", f.ca)
		}
		cfg.RootCAs = pool
	}
	if (f.cert == "") != (f.key == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if f.cert != "" {
		c, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}
