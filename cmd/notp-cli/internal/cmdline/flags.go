package cmdline

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/cookiefile"
)

// DefaultPort and DefaultTimeout are the defaults of -p and --timeout
// (notp's ncl, plus --timeout).
const (
	DefaultPort    = 7022
	DefaultTimeout = 5 * time.Second
)

// Flags are the parsed command line of notp-cli: its global flags, then
// the command and its arguments.
type Flags struct {
	Target  notp.Node     // -I, -H, -p
	Key     string        // -a, --key-file or $NOTP_COOKIE: the cluster cookie; empty = insecure
	Timeout time.Duration // --timeout: bound of each request
	TLS     *tls.Config   // --tls*: nil = plain TCP
	Format  string        // --format: "text", "json" or "" (the mode's default)
	Help    bool          // -h, --help
	Cmd     string        // the command, empty for the shell
	Args    []string      // the command's arguments
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
	p, err := ParsePort(s)
	if err != nil {
		return err
	}
	*f.p = p
	return nil
}

// ErrFlags wraps every command-line parse failure (a usage error).
var ErrFlags = errors.New("bad flags")

// ParseFlags reads the flags and splits off the command and its
// arguments. The flag package stops at the first non-flag argument, so
// flags come before the command; what follows belongs to the command.
func ParseFlags(args []string) (Flags, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	o := Flags{Target: notp.Node{ID: host, Host: host, Port: DefaultPort}, Timeout: DefaultTimeout}
	if err := envDefaults(&o.Target); err != nil {
		return o, fmt.Errorf("%w: %w", ErrFlags, err)
	}
	fs := flag.NewFlagSet("notp-cli", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // we print our own messages
	for _, name := range []string{"I", "instance"} {
		fs.StringVar(&o.Target.ID, name, o.Target.ID, "")
	}
	for _, name := range []string{"H", "hostname"} {
		fs.StringVar(&o.Target.Host, name, o.Target.Host, "")
	}
	for _, name := range []string{"p", "port"} {
		fs.Var(portFlag{&o.Target.Port}, name, "")
	}
	var ks keySources
	for _, name := range []string{"a", "key"} {
		fs.StringVar(&ks.key, name, "", "")
	}
	fs.StringVar(&ks.file, "key-file", "", "")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "")
	fs.Func("format", "", func(v string) (err error) { o.Format, err = ParseFormat(v); return err })
	var tf tlsFlags
	fs.BoolVar(&tf.on, "tls", false, "")
	fs.StringVar(&tf.ca, "tls-ca", "", "")
	fs.StringVar(&tf.cert, "tls-cert", "", "")
	fs.StringVar(&tf.key, "tls-key", "", "")
	fs.StringVar(&tf.serverName, "tls-server-name", "", "")
	fs.BoolVar(&tf.insecure, "tls-insecure-skip-verify", false, "")
	for _, name := range []string{"h", "help"} {
		fs.BoolVar(&o.Help, name, false, "")
	}
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %s", ErrFlags, strings.TrimPrefix(err.Error(), "flag "))
	}
	if o.Help {
		return o, nil
	}
	fs.Visit(func(f *flag.Flag) { ks.keySet = ks.keySet || f.Name == "a" || f.Name == "key" })
	ks.env = os.Getenv(EnvCookie)
	if rest := fs.Args(); len(rest) == 0 || rest[0] != "keygen" {
		if o.Key, err = ks.resolve(); err != nil {
			return o, fmt.Errorf("%w: %w", ErrFlags, err)
		}
	}
	if o.Timeout <= 0 {
		return o, fmt.Errorf("%w: --timeout must be positive, got %v", ErrFlags, o.Timeout)
	}
	if err := o.Target.Validate(); err != nil {
		return o, fmt.Errorf("%w: target node (-I, -H, -p): %w", ErrFlags, err)
	}
	tc, err := tf.config()
	if err != nil {
		return o, fmt.Errorf("%w: %w", ErrFlags, err)
	}
	o.TLS = tc
	if rest := fs.Args(); len(rest) > 0 {
		o.Cmd, o.Args = rest[0], rest[1:]
	}
	return o, nil
}

// EnvInstance, EnvHost and EnvPort are the environment variables that
// give the target's defaults.
const (
	EnvInstance = "NOTP_INSTANCE"
	EnvHost     = "NOTP_HOST"
	EnvPort     = "NOTP_PORT"
)

// MaxEnvLen bounds what is read from an environment variable, in bytes.
const MaxEnvLen = 1024

// envDefaults sets the target's id, host and port from NOTP_INSTANCE,
// NOTP_HOST and NOTP_PORT when they are set and not empty; flags override
// them. A malformed value is an error (the flags' checks apply to the
// result too).
func envDefaults(t *notp.Node) error {
	for _, e := range []struct {
		name string
		dst  *string
	}{{EnvInstance, &t.ID}, {EnvHost, &t.Host}} {
		if v := os.Getenv(e.name); v != "" {
			if len(v) > MaxEnvLen {
				return fmt.Errorf("$%s: %d bytes, at most %d", e.name, len(v), MaxEnvLen)
			}
			*e.dst = v
		}
	}
	if v := os.Getenv(EnvPort); v != "" {
		p, err := ParsePort(v)
		if err != nil {
			return fmt.Errorf("$%s: %w", EnvPort, err)
		}
		t.Port = p
	}
	return nil
}

// EnvCookie is the environment variable the cookie is read from when
// neither --key nor --key-file is given.
const EnvCookie = cookiefile.EnvVar

// keySources are the places the cookie can come from.
type keySources struct {
	key    string // --key / -a
	keySet bool   // --key / -a was given, even as ""
	file   string // --key-file; "" = not given
	env    string // $NOTP_COOKIE
}

// resolve picks the cookie: --key (or -a) if given, else the --key-file's
// content, else $NOTP_COOKIE, else "" (a node without a cookie). A key
// file loses one trailing line ending; an unreadable, empty or oversized
// file is an error.
func (s keySources) resolve() (string, error) {
	switch {
	case s.keySet:
		return s.key, nil
	case s.file != "":
		key, err := cookiefile.Read(s.file)
		if err != nil {
			return "", fmt.Errorf("--key-file: %w", err)
		}
		return key, nil
	}
	return s.env, nil
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
