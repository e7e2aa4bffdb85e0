package replicated

import (
	"errors"
	"log/slog"
	"testing"
	"time"
)

// shared is a Config with the fields every replicated service has.
type shared struct {
	Name                   string
	Retries                int
	MinWait, MaxWait       time.Duration
	Timeout, SweepInterval time.Duration
	Now                    func() time.Time
	Logger                 *slog.Logger
}

func (c *shared) fields() Fields {
	return Fields{Name: &c.Name, Retries: &c.Retries, MinWait: &c.MinWait, MaxWait: &c.MaxWait,
		Timeout: &c.Timeout, SweepInterval: &c.SweepInterval, Now: &c.Now, Logger: &c.Logger}
}

func TestSetDefaultsFillsOnlyZeroFields(t *testing.T) {
	var c shared
	c.fields().SetDefaults("svc")
	if c.Name != "svc" || c.Retries != 0 || c.MinWait != DefaultMinWait || c.MaxWait != DefaultMaxWait ||
		c.Timeout != DefaultTimeout || c.SweepInterval != DefaultSweepInterval || c.Now == nil || c.Logger == nil {
		t.Fatalf("defaults: %+v", c)
	}
	c.Logger.Info("a discarding logger takes this") // must not panic
	at := time.Unix(7, 0)
	log := slog.New(slog.DiscardHandler)
	set := shared{Name: "n", Retries: 3, MinWait: 1, MaxWait: 2, Timeout: 3, SweepInterval: 4, Now: func() time.Time { return at }, Logger: log}
	want := set
	set.fields().SetDefaults("svc")
	if set.Name != want.Name || set.Retries != 3 || set.MinWait != 1 || set.MaxWait != 2 || set.Timeout != 3 ||
		set.SweepInterval != 4 || set.Now() != at || set.Logger != log {
		t.Fatalf("set fields changed: %+v", set)
	}
}

func TestDefaultReplacesTheZeroValueOnly(t *testing.T) {
	n, f, s := 0, 0.0, ""
	Default(&n, 5)
	Default(&f, 0.5)
	Default(&s, "x")
	if n != 5 || f != 0.5 || s != "x" {
		t.Fatalf("zero values not replaced: %d %v %q", n, f, s)
	}
	n = -1
	Default(&n, 5)
	if n != -1 {
		t.Fatalf("a set value was replaced: %d", n)
	}
}

func TestValidateRejectsOutOfRangeFields(t *testing.T) {
	invalid := errors.New("svc: invalid config")
	for name, mod := range map[string]func(*shared){
		"retries below NoRetries": func(c *shared) { c.Retries = NoRetries - 1 },
		"negative MinWait":        func(c *shared) { c.MinWait = -1 },
		"MaxWait below MinWait":   func(c *shared) { c.MinWait, c.MaxWait = time.Second, time.Millisecond },
		"negative Timeout":        func(c *shared) { c.Timeout = -1 },
		"negative SweepInterval":  func(c *shared) { c.SweepInterval = -1 },
	} {
		var c shared
		c.fields().SetDefaults("svc")
		mod(&c)
		if err := c.fields().Validate(invalid); !errors.Is(err, invalid) {
			t.Errorf("%s: Validate = %v, want %v", name, err, invalid)
		}
	}
	c := shared{Retries: NoRetries}
	c.fields().SetDefaults("svc")
	if err := c.fields().Validate(invalid); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

func TestExpiryGivesTheTimeLeftByTheWallClock(t *testing.T) {
	now := time.UnixMilli(1_700_000_010_000)
	for _, c := range []struct {
		start, ttl int64
		left       time.Duration
		live       bool
	}{
		{1_700_000_000_000, 15_000, 5 * time.Second, true}, // 10 s of 15 s gone
		{1_700_000_000_000, 10_000, 0, false},              // ends now
		{1_700_000_000_000, 9_000, 0, false},               // ended a second ago
		{1_700_000_020_000, 3_000, 3 * time.Second, true},  // starts later: one TTL at most
		{1_700_000_010_000, 1, time.Millisecond, true},     // just granted
	} {
		exp, live := Expiry(c.start, c.ttl, now)
		if live != c.live || (live && exp.Sub(now) != c.left) {
			t.Errorf("Expiry(%d, %d) = %v left, live %v; want %v, %v", c.start, c.ttl, exp.Sub(now), live, c.left, c.live)
		}
	}
}
