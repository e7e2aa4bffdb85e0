package discover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeResolver answers from tables; names absent from them fail.
type fakeResolver struct {
	mu    sync.Mutex
	hosts map[string][]string
	srvs  map[string][]*net.SRV
	// onLookup, if set, runs on each LookupHost (under mu).
	onLookup func()
}

func (r *fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.onLookup != nil {
		r.onLookup()
	}
	if a, ok := r.hosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (r *fakeResolver) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.srvs[name]; ok {
		return name, s, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (r *fakeResolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts[host] = addrs
}

func newFake() *fakeResolver {
	return &fakeResolver{
		hosts: map[string][]string{
			"notp.svc":   {"10.0.0.1", "10.0.0.2", "10.0.0.3"},
			"notp-0.svc": {"10.0.0.1"},
			"notp-1.svc": {"10.0.0.2"},
			"junk.svc":   {"not-an-ip", "10.0.0.9"},
		},
		srvs: map[string][]*net.SRV{
			"_notp._tcp.notp.svc": {
				{Target: "notp-1.svc.", Port: 7001, Priority: 1, Weight: 5},
				{Target: "notp-0.svc.", Port: 7000, Priority: 0, Weight: 5},
				{Target: "gone.svc.", Port: 7002, Priority: 2},
				{Target: "zero-port.svc.", Port: 0},
			},
		},
	}
}

func finder(t *testing.T, r Resolver, cfg Config) *Finder {
	t.Helper()
	cfg.Resolver = r
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestResolve(t *testing.T) {
	f := finder(t, newFake(), Config{DefaultPort: 7946})
	tests := []struct {
		seeds []string
		want  []string
	}{
		{[]string{"10.0.0.7:9000"}, []string{"10.0.0.7:9000"}},
		{[]string{"[::1]:9000", "::1"}, []string{"[::1]:9000", "[::1]:7946"}},
		{[]string{"notp.svc:7000"}, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"}},
		{[]string{"notp.svc"}, []string{"10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946"}},
		// SRV: by priority, each target resolved with its record's port;
		// unresolvable targets and port 0 are skipped.
		{[]string{"_notp._tcp.notp.svc"}, []string{"10.0.0.1:7000", "10.0.0.2:7001"}},
		// Duplicates once, unresolvable seeds skipped, resolver junk dropped.
		{[]string{"notp-0.svc:7000", "missing.svc:1", "notp.svc:7000", "junk.svc:1"},
			[]string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000", "10.0.0.9:1"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.seeds, ","), func(t *testing.T) {
			got, err := f.Resolve(context.Background(), tt.seeds)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Resolve = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	f := finder(t, newFake(), Config{})
	for _, seeds := range [][]string{
		{"notp.svc"}, // no port, no default
		{"host:0"}, {"host:70000"}, {"host:x"}, {""}, {"bad host:1"}, {"_srv..x"},
		{strings.Repeat("a", 300) + ":1"},
		slices.Repeat([]string{"10.0.0.1:1"}, MaxSeeds+1),
	} {
		if _, err := f.Resolve(context.Background(), seeds); !errors.Is(err, ErrBadSeed) {
			t.Errorf("Resolve(%.40q) = %v, want ErrBadSeed", seeds, err)
		}
	}
	_, err := f.Resolve(context.Background(), []string{"missing.svc:1", "_x._tcp.missing.svc"})
	if !errors.Is(err, ErrNoSeeds) || !strings.Contains(err.Error(), "missing.svc") {
		t.Fatalf("unresolvable seeds: %v, want ErrNoSeeds naming them", err)
	}
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		t.Fatalf("the resolver's error is lost: %v", err)
	}
	if _, err := f.Resolve(context.Background(), nil); !errors.Is(err, ErrNoSeeds) {
		t.Fatalf("no seeds: %v", err)
	}
}

// A DNS answer with more addresses than MaxAddrs is cut.
func TestResolveMaxAddrs(t *testing.T) {
	r := newFake()
	var many []string
	for i := range 300 {
		many = append(many, fmt.Sprintf("10.1.%d.%d", i/256, i%256))
	}
	r.set("big.svc", many...)
	f := finder(t, r, Config{MaxAddrs: 5})
	got, err := f.Resolve(context.Background(), []string{"big.svc:1", "notp.svc:1"})
	if err != nil || len(got) != 5 {
		t.Fatalf("Resolve = %d addresses, %v; want 5", len(got), err)
	}
}

// Retry backs off exponentially, with jitter, between rounds that fail
// (seeds not in DNS yet, then try failing), and returns once try
// succeeds.
func TestRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newFake()
		var lookups []time.Time
		r.onLookup = func() { lookups = append(lookups, time.Now()) }
		f := finder(t, r, Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: 800 * time.Millisecond})
		go func() { // the seed's name appears in DNS after 1.5 s
			time.Sleep(1500 * time.Millisecond)
			r.set("late.svc", "10.0.0.5")
		}()
		tries := 0
		var tried []string
		err := f.Retry(context.Background(), []string{"late.svc:7000"}, func(ctx context.Context, addrs []string) error {
			tries++
			tried = addrs
			if tries < 3 {
				return errors.New("seed refused")
			}
			return nil
		})
		if err != nil || tries != 3 || !reflect.DeepEqual(tried, []string{"10.0.0.5:7000"}) {
			t.Fatalf("Retry = %v after %d tries of %q", err, tries, tried)
		}
		backoff := 100 * time.Millisecond
		for i := 1; i < len(lookups); i++ {
			gap := lookups[i].Sub(lookups[i-1])
			if gap < backoff/2 || gap > backoff {
				t.Errorf("wait %d: %v, want within [%v, %v]", i, gap, backoff/2, backoff)
			}
			backoff = min(2*backoff, 800*time.Millisecond)
		}
		if len(lookups) < 5 {
			t.Fatalf("%d rounds: the backoff did not grow as expected", len(lookups))
		}
	})
}

// Retry ends with ctx, returning the last round's error with ctx's; a
// malformed seed ends it at once.
func TestRetryEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := finder(t, newFake(), Config{})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := f.Retry(ctx, []string{"missing.svc:1"}, func(context.Context, []string) error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrNoSeeds) {
			t.Fatalf("Retry past its ctx = %v, want the deadline and ErrNoSeeds", err)
		}
		err = f.Retry(context.Background(), []string{"bad host:1"}, nil)
		if !errors.Is(err, ErrBadSeed) {
			t.Fatalf("Retry of a malformed seed = %v", err)
		}
	})
}
