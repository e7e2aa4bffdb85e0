package discover

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by [New] to zero Config fields.
const (
	DefaultMinBackoff    = 250 * time.Millisecond
	DefaultMaxBackoff    = 10 * time.Second
	DefaultLookupTimeout = 5 * time.Second
	DefaultMaxAddrs      = 64
	// MaxSeeds bounds the seeds one Resolve takes.
	MaxSeeds = 64
)

// ErrNoSeeds: Resolve was given no seeds, or none of them resolved to an
// address.
var ErrNoSeeds = errors.New("discover: no seed address")

// ErrBadSeed: a seed is not host:port, a DNS name, or an SRV name.
var ErrBadSeed = errors.New("discover: bad seed")

// Resolver looks names up in DNS. *net.Resolver implements it; tests
// inject a fake. Its methods are called from the goroutine that called
// Resolve or Retry, may block up to their ctx's deadline, and must be
// safe for concurrent use if the Finder is shared.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

var _ Resolver = (*net.Resolver)(nil)

// Config configures a [Finder]. The zero value of each field selects the
// documented default.
type Config struct {
	// Resolver looks names up; nil = net.DefaultResolver.
	Resolver Resolver
	// DefaultPort is the port of seeds given as a bare host name or IP.
	// 0 = such seeds are an error.
	DefaultPort int
	// MinBackoff is Retry's first wait after a failed round, doubled after
	// each further failure up to MaxBackoff; every wait is drawn uniformly
	// from [backoff/2, backoff) (jitter, so that nodes started together do
	// not retry in step). 0 = 250 ms.
	MinBackoff time.Duration
	// MaxBackoff caps Retry's wait. 0 = 10 s.
	MaxBackoff time.Duration
	// LookupTimeout bounds each DNS lookup. 0 = 5 s.
	LookupTimeout time.Duration
	// MaxAddrs bounds the addresses one Resolve returns, however many a
	// DNS answer holds. 0 = 64.
	MaxAddrs int
}

// Finder resolves seeds into addresses and retries until one answers.
// It is safe for concurrent use.
type Finder struct {
	cfg Config
}

// New returns a Finder for cfg (copied; defaults applied).
func New(cfg Config) (*Finder, error) {
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.DefaultPort < 0 || cfg.DefaultPort > 65535 {
		return nil, fmt.Errorf("discover: config: DefaultPort %d out of range", cfg.DefaultPort)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.MinBackoff, DefaultMinBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.LookupTimeout, DefaultLookupTimeout)
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.MaxAddrs <= 0 {
		cfg.MaxAddrs = DefaultMaxAddrs
	}
	return &Finder{cfg: cfg}, nil
}

// Resolve turns seeds into "ip:port" addresses, without duplicates, in
// the order of the seeds (a name's addresses in the resolver's order):
//
//   - host:port, where host is an IP or a DNS name: every address the
//     name resolves to, with port;
//   - host alone: the same with Config.DefaultPort;
//   - an SRV name, whose first label starts with an underscore
//     (_notp._tcp.example.com): every target of its records, resolved,
//     with the record's port, by priority and then weight.
//
// A seed that does not resolve is skipped; Resolve fails (wrapping
// ErrNoSeeds, with every seed's error) only when no address results, or
// at once, wrapping ErrBadSeed, for a malformed seed. At most MaxSeeds
// seeds and Config.MaxAddrs addresses.
func (f *Finder) Resolve(ctx context.Context, seeds []string) ([]string, error) {
	if len(seeds) == 0 {
		return nil, fmt.Errorf("%w: none given", ErrNoSeeds)
	}
	if len(seeds) > MaxSeeds {
		return nil, fmt.Errorf("%w: %d seeds, at most %d", ErrBadSeed, len(seeds), MaxSeeds)
	}
	parsed := make([]seed, len(seeds))
	for i, s := range seeds {
		p, err := f.parse(s)
		if err != nil {
			return nil, err
		}
		parsed[i] = p
	}
	var out []string
	var errs []error
	for _, s := range parsed {
		addrs, err := f.resolve(ctx, s)
		if err != nil {
			errs = append(errs, err)
		}
		for _, a := range addrs {
			if len(out) < f.cfg.MaxAddrs && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrNoSeeds, errors.Join(errs...))
	}
	return out, nil
}

// Check reports the first malformed seed (wrapping ErrBadSeed), or too
// many seeds, without resolving anything: for validating a configuration
// early.
func (f *Finder) Check(seeds []string) error {
	if len(seeds) > MaxSeeds {
		return fmt.Errorf("%w: %d seeds, at most %d", ErrBadSeed, len(seeds), MaxSeeds)
	}
	for _, s := range seeds {
		if _, err := f.parse(s); err != nil {
			return err
		}
	}
	return nil
}

// seed is a parsed seed: an SRV name, or a host and port.
type seed struct {
	srv  bool
	host string
	port int
}

func (f *Finder) parse(s string) (seed, error) {
	bad := func(why string) (seed, error) { return seed{}, fmt.Errorf("%w %q: %s", ErrBadSeed, s, why) }
	if s == "" || len(s) > 260 {
		return bad("empty or over 260 bytes")
	}
	if strings.HasPrefix(s, "_") {
		if !validName(s) {
			return bad("not a DNS name")
		}
		return seed{srv: true, host: s}, nil
	}
	host, portStr, err := net.SplitHostPort(s)
	port := f.cfg.DefaultPort
	bare := strings.Trim(s, "[]")
	if err != nil {
		if net.ParseIP(bare) == nil && !strings.Contains(err.Error(), "missing port") {
			return bad(err.Error())
		}
		host = bare
		if port == 0 {
			return bad("no port and no default port")
		}
	} else {
		p, err := strconv.Atoi(portStr)
		if err != nil || p < 1 || p > 65535 {
			return bad("port out of range")
		}
		port = p
	}
	if net.ParseIP(host) == nil && !validName(host) {
		return bad("host is neither an IP nor a DNS name")
	}
	return seed{host: host, port: port}, nil
}

// validName reports whether s is a plausible DNS name: at most 253
// bytes, labels of 1 to 63 letters, digits, '-' or '_'.
func validName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// resolve returns the addresses of one seed.
func (f *Finder) resolve(ctx context.Context, s seed) ([]string, error) {
	if !s.srv {
		return f.hostAddrs(ctx, s.host, s.port)
	}
	lctx, cancel := context.WithTimeout(ctx, f.cfg.LookupTimeout)
	_, srvs, err := f.cfg.Resolver.LookupSRV(lctx, "", "", s.host)
	cancel()
	if err != nil && len(srvs) == 0 {
		return nil, fmt.Errorf("discover: SRV %s: %w", s.host, err)
	}
	slices.SortStableFunc(srvs, func(a, b *net.SRV) int {
		if a.Priority != b.Priority {
			return int(a.Priority) - int(b.Priority)
		}
		return int(b.Weight) - int(a.Weight)
	})
	var out []string
	var errs []error
	for i, r := range srvs {
		if i >= f.cfg.MaxAddrs || r == nil || r.Port == 0 {
			continue
		}
		target := strings.TrimSuffix(r.Target, ".")
		if net.ParseIP(target) == nil && !validName(target) {
			errs = append(errs, fmt.Errorf("discover: SRV %s: bad target %q", s.host, r.Target))
			continue
		}
		addrs, err := f.hostAddrs(ctx, target, int(r.Port))
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, addrs...)
	}
	if len(out) == 0 {
		errs = append(errs, fmt.Errorf("discover: SRV %s: no usable target", s.host))
	}
	return out, errors.Join(errs...)
}

// hostAddrs resolves host (an IP is itself) and joins each address with
// port.
func (f *Finder) hostAddrs(ctx context.Context, host string, port int) ([]string, error) {
	p := strconv.Itoa(port)
	if net.ParseIP(host) != nil {
		return []string{net.JoinHostPort(host, p)}, nil
	}
	lctx, cancel := context.WithTimeout(ctx, f.cfg.LookupTimeout)
	ips, err := f.cfg.Resolver.LookupHost(lctx, host)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("discover: lookup %s: %w", host, err)
	}
	out := make([]string, 0, min(len(ips), f.cfg.MaxAddrs))
	for _, ip := range ips {
		if len(out) == f.cfg.MaxAddrs {
			break
		}
		if net.ParseIP(ip) != nil { // a resolver's answer is input too
			out = append(out, net.JoinHostPort(ip, p))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("discover: lookup %s: no addresses", host)
	}
	return out, nil
}

// Retry resolves seeds and calls try with the addresses, again and again
// until try returns nil, backing off exponentially with jitter between
// rounds (Config.MinBackoff to MaxBackoff); a round whose seeds resolve
// to nothing counts as failed too, so seeds that are not in DNS yet (pods
// of a StatefulSet starting together) are waited for. It returns nil once
// try succeeded, the malformed-seed error at once, or, when ctx ends, the
// last round's error joined with ctx's.
func (f *Finder) Retry(ctx context.Context, seeds []string, try func(ctx context.Context, addrs []string) error) error {
	backoff := f.cfg.MinBackoff
	for {
		addrs, err := f.Resolve(ctx, seeds)
		if errors.Is(err, ErrBadSeed) {
			return err
		}
		if err == nil {
			if err = try(ctx, addrs); err == nil {
				return nil
			}
		}
		d := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("discover: no seed answered: %w", errors.Join(err, ctx.Err()))
		case <-t.C:
		}
		backoff = min(2*backoff, f.cfg.MaxBackoff)
	}
}
