package kernel

import (
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp"
)

// New refuses configs that cannot run safely, each with an error that
// wraps ErrInvalidConfig (and the cause, where there is one) and says
// which field is wrong.
func TestConfigRejects(t *testing.T) {
	base := func() Config { return Config{Node: notp.Node{ID: "n", Host: "127.0.0.1"}, Cookie: testCookie} }
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr error  // errors.Is, when set
		want    string // in the message
	}{
		{"no node id", func(c *Config) { c.Node.ID = "" }, notp.ErrInvalidNode, "kernel: invalid config"},
		{"no cookie", func(c *Config) { c.Cookie = "" }, ErrInsecure, ""},
		{"weak cookie", func(c *Config) { c.Cookie = "short" }, ErrWeakCookie, "5 bytes"},
		{"negative port", func(c *Config) { c.Node.Port = -1 }, notp.ErrInvalidNode, "port -1"},
		{"port over 65535", func(c *Config) { c.Node.Port = notp.MaxPort + 1 }, notp.ErrInvalidNode, "port 65536"},
		{"small frames", func(c *Config) { c.MaxFrameSize = ChunkSize }, nil, "MaxFrameSize"},
		{"budget below a stream", func(c *Config) { c.MaxStreamSize, c.MaxPeerBytes = 2<<20, 1<<20 }, nil, "MaxPeerBytes"},
		{"busy poll over a second", func(c *Config) { c.BusyPoll = 2 * time.Second }, nil, "BusyPoll"},
		{"negative pollers", func(c *Config) { c.MaxPollers = -1 }, nil, "MaxPollers"},
		{"keys without a cookie", func(c *Config) { c.Cookie, c.Insecure, c.Keys = "", true, []string{testCookie} }, ErrInsecure, "Keys"},
		{"too many keys", func(c *Config) { c.Keys = slices.Repeat([]string{testCookie}, MaxKeys) }, ErrKeyringFull, "keys with Cookie"},
		{"weak key", func(c *Config) { c.Keys = []string{"short"} }, ErrWeakCookie, "Keys[0]"},
	}
	for _, tt := range tests {
		cfg := base()
		tt.change(&cfg)
		_, err := New(cfg)
		if err == nil || !errors.Is(err, ErrInvalidConfig) || tt.wantErr != nil && !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig and %v mentioning %q", tt.name, err, tt.wantErr, tt.want)
		}
	}
	// The escape hatches: a weak cookie when allowed, none when insecure.
	for name, change := range map[string]func(*Config){
		"weak cookie allowed": func(c *Config) { c.Cookie, c.AllowWeakCookie = "short", true },
		"insecure":            func(c *Config) { c.Cookie, c.Insecure = "", true },
	} {
		cfg := base()
		change(&cfg)
		if _, err := New(cfg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Zero fields get the documented defaults; an inverted reconnect range is
// closed up; a negative CallTimeout (no timeout) and BusyPoll (off) stay;
// the caller's Config and tls.Config are copied, never written to.
func TestConfigDefaults(t *testing.T) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS10}
	in := Config{Node: notp.Node{ID: "n", Host: "127.0.0.1"}, Cookie: testCookie, TLS: tlsCfg,
		ReconnectMin: time.Second, ReconnectMax: time.Millisecond, CallTimeout: -1, BusyPoll: -5}
	saved := in
	k, err := New(in)
	if err != nil {
		t.Fatal(err)
	}
	c := k.cfg
	for _, d := range []struct {
		name      string
		got, want any
	}{
		{"MaxFrameSize", c.MaxFrameSize, DefaultMaxFrameSize},
		{"QueueLen", c.QueueLen, DefaultQueueLen},
		{"ReconnectMin", c.ReconnectMin, time.Second},
		{"ReconnectMax", c.ReconnectMax, time.Second},
		{"HandshakeTimeout", c.HandshakeTimeout, DefaultHandshakeTimeout},
		{"WriteTimeout", c.WriteTimeout, DefaultWriteTimeout},
		{"CallTimeout", c.CallTimeout, time.Duration(-1)},
		{"MaxStreamSize", c.MaxStreamSize, int64(DefaultMaxStreamSize)},
		{"StreamTimeout", c.StreamTimeout, DefaultStreamTimeout},
		{"BusyPoll", c.BusyPoll, BusyPollOff},
		{"MaxPollers", c.MaxPollers, defaultMaxPollers()},
		{"TLS.MinVersion", c.TLS.MinVersion, uint16(tls.VersionTLS12)},
	} {
		if d.got != d.want {
			t.Errorf("%s = %v, want %v", d.name, d.got, d.want)
		}
	}
	if c.Logger == nil || c.Now == nil || c.Listen == nil || c.Dial == nil {
		t.Error("a nil Logger, Now, Listen or Dial was left nil")
	}
	if tlsCfg.MinVersion != tls.VersionTLS10 || c.TLS == tlsCfg {
		t.Error("New changed or kept the caller's tls.Config")
	}
	if in.ReconnectMax != saved.ReconnectMax || in.Logger != nil || in.TLS != saved.TLS {
		t.Error("New wrote back into the caller's Config")
	}
	// The zero CallTimeout is the default one.
	k, err = New(Config{Node: notp.Node{ID: "n", Host: "127.0.0.1"}, Cookie: testCookie})
	if err != nil || k.cfg.CallTimeout != DefaultCallTimeout {
		t.Fatalf("zero CallTimeout: %v, %v", k.cfg.CallTimeout, err)
	}
}
