package gossip

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/vclock"
)

func validMsg() *message {
	c := vclock.New()
	c.Increment("a")
	return &message{Type: msgUpdate, Ring: "ring", Round: 1, Clock: c,
		Entries: []entry{ent("a", 1, "a", false, 3), ent("b", 2, "a", true, 0)}}
}

// Every decoded ring message is validated: an invalid payload is an error,
// so a malformed or hostile message cannot corrupt the ring's state.
func TestDecodeMessageValidation(t *testing.T) {
	if _, err := decodeMessage(encodeMessage(validMsg())); err != nil {
		t.Fatalf("valid message rejected: %v", err)
	}
	cases := map[string]func(m *message){
		"unknown type":         func(m *message) { m.Type = 99 },
		"empty ring":           func(m *message) { m.Ring = "" },
		"ring with space":      func(m *message) { m.Ring = "a b" },
		"long ring":            func(m *message) { m.Ring = strings.Repeat("r", MaxRingIDLen+1) },
		"negative round":       func(m *message) { m.Round = -1 },
		"huge round":           func(m *message) { m.Round = maxRound + 1 },
		"no clock":             func(m *message) { m.Clock = nil },
		"invalid node":         func(m *message) { m.Entries[0].Node.Port = 0 },
		"empty id":             func(m *message) { m.Entries[0].Node.ID = "" },
		"weight too big":       func(m *message) { m.Entries[0].Weight = MaxWeight + 1 },
		"live weight 0":        func(m *message) { m.Entries[0].Weight = 0 },
		"negative weight":      func(m *message) { m.Entries[1].Weight = -1 },
		"no writer":            func(m *message) { m.Entries[0].Writer = "" },
		"duplicate node":       func(m *message) { m.Entries[1] = m.Entries[0] },
		"digest with entries":  func(m *message) { m.Type = msgDigest },
		"pull with entries":    func(m *message) { m.Type = msgPull },
		"digest without clock": func(m *message) { m.Type, m.Entries, m.Clock = msgDigest, nil, nil },
		"sum with a clock":     func(m *message) { m.Type, m.Entries = msgSum, nil },
		"sum with entries":     func(m *message) { m.Type, m.Clock = msgSum, nil },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			m := validMsg()
			mutate(m)
			b := encodeMessage(m)
			if _, err := decodeMessage(b); !errors.Is(err, errInvalidMessage) {
				t.Fatalf("decode = %v, want errInvalidMessage", err)
			}
		})
	}
	for name, b := range map[string][]byte{"nil": nil, "garbage": []byte("\xc1\xff\x00"), "array": {0x91, 0x01},
		"wrong version": mustMarshal(map[string]any{"v": 2, "type": 2, "ring": "r"}),
		// 14 bytes declaring 2^28 entries: rejected before any allocation.
		"huge array": {0x81, 0xa7, 'e', 'n', 't', 'r', 'i', 'e', 's', 0xdd, 0x10, 0, 0, 0}} {
		if _, err := decodeMessage(b); !errors.Is(err, errInvalidMessage) {
			t.Errorf("%s: decode = %v, want errInvalidMessage", name, err)
		}
	}
}

func mustMarshal(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzDecodeMessage: decoding never panics, and what decodes re-encodes to
// an equal message.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(encodeMessage(validMsg()))
	d := validMsg()
	d.Type, d.Entries = msgDigest, nil
	f.Add(encodeMessage(d))
	f.Add(encodeMessage(&message{Type: msgPull, Ring: "r"}))
	f.Add(encodeMessage(&message{Type: msgSum, Ring: "r", Sum: 42}))
	j := validMsg()
	j.Type, j.Floor = msgJoin, 7
	f.Add(encodeMessage(j))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		m2, err := decodeMessage(encodeMessage(m))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if m2.Type != m.Type || m2.Ring != m.Ring || m2.Round != m.Round || m2.Floor != m.Floor ||
			!slices.Equal(m2.Entries, m.Entries) {
			t.Fatalf("round trip changed the message")
		}
		if (m.Clock == nil) != (m2.Clock == nil) || (m.Clock != nil && !m.Clock.Equal(m2.Clock)) {
			t.Fatalf("round trip changed the clock")
		}
	})
}

func validFile() []byte {
	c := vclock.New()
	c.Increment("a")
	return mustMarshal(&fileState{Version: 1, Ring: "ring", Self: "a", Clock: c,
		Entries: []entry{ent("a", 1, "a", false, 3)}})
}

// FuzzDecodeFile: a state file never panics the decoder; what decodes
// encodes back to a file that decodes to the same state.
func FuzzDecodeFile(f *testing.F) {
	f.Add(validFile())
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := decodeFile(b, "a")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		fs2, err := decodeFile(mustMarshal(fs), "a")
		if err != nil || !slices.Equal(fs.Entries, fs2.Entries) || fs.Ring != fs2.Ring {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// Load without a path, of a missing file, a read error, invalid content (JSON
// in notp; msgpack here), a non-object, and a valid file restoring ring,
// clock and ring id.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	k := startKernel(t, "a", 0)
	t.Cleanup(func() { _ = k.Close() })
	mk := func(path string) *Ring {
		r, err := New(k, Config{FlushPath: path})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if ok, err := mk("").Load(); ok || err != nil {
		t.Fatalf("Load without path = %v, %v", ok, err)
	}
	r := mk(filepath.Join(dir, "missing"))
	before := r.View()
	if ok, err := r.Load(); ok || err != nil || r.View() != before || r.RingID() != "" {
		t.Fatalf("Load of a missing file = %v, %v", ok, err)
	}
	if _, err := mk(dir).Load(); err == nil || errors.Is(err, ErrCorrupt) { // a directory
		t.Fatalf("Load of a directory = %v, want a read error", err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, b := range map[string][]byte{
		"json":          []byte(`{"ring": "x"}`),
		"not-an-object": mustMarshal(42),
		"truncated":     validFile()[:20],
		"empty":         {},
		"other-node": mustMarshal(&fileState{Version: 1, Ring: "ring", Self: "b", Clock: vclock.New(),
			Entries: []entry{ent("a", 1, "a", false, 3)}}),
		"bad-version": mustMarshal(&fileState{Version: 9, Self: "a", Clock: vclock.New()}),
		"bad-entry": mustMarshal(&fileState{Version: 1, Self: "a", Clock: vclock.New(),
			Entries: []entry{ent("a", 1, "a", false, MaxWeight+1)}}),
	} {
		if _, err := mk(write(name, b)).Load(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Load = %v, want ErrCorrupt", name, err)
		}
	}
	// A valid file loads.
	c := vclock.New()
	c.Increment("a")
	c.Increment("b")
	p := write("good", mustMarshal(&fileState{Version: 1, Ring: "ring", Self: "a", Clock: c,
		Entries: []entry{ent("a", 1, "a", false, 3), ent("b", 2, "a", false, 5), ent("c", 3, "b", true, 0)}}))
	r = mk(p)
	if ok, err := r.Load(); !ok || err != nil {
		t.Fatalf("Load = %v, %v", ok, err)
	}
	if r.RingID() != "ring" || !slices.Equal(ringIDs(r), []string{"a", "b"}) || r.View().Weights()["b"] != 5 ||
		r.Clock().Compare(c) != vclock.Equal {
		t.Fatalf("loaded ring %v (%q), clock %v", ringIDs(r), r.RingID(), r.Clock())
	}
}

// Flushing writes msgpack through a temporary file that is fsynced and
// renamed; an unchanged state is not rewritten; a failing write is counted
// and retried.
func TestFlush(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ring.state")
	n := newNode(t, "a", func(c *Config) { c.FlushPath = p; c.FlushInterval = time.Hour; c.Interval = time.Hour })
	n.start("")
	if err := n.r.flush(); err != nil {
		t.Fatal(err)
	}
	flushes := n.r.Stats().Flushes
	if err := n.r.flush(); err != nil || n.r.Stats().Flushes != flushes {
		t.Fatalf("unchanged state rewritten: %v %d→%d", err, flushes, n.r.Stats().Flushes)
	}
	if err := n.r.Insert(ctx(t), notp.Node{ID: "b", Host: "127.0.0.1", Port: 9}, 4, false); err != nil {
		t.Fatal(err)
	}
	if err := n.r.flush(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	body, err := fileBody(b)
	if err != nil {
		t.Fatal(err)
	}
	f, err := decodeFile(body, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 2 || f.Entries[1].Weight != 4 {
		t.Fatalf("file entries = %v", f.Entries)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	bad := newNode(t, "c", func(c *Config) {
		c.FlushPath = filepath.Join(dir, "missing-dir", "x")
		c.FlushInterval = time.Hour
	})
	bad.start("")
	if err := bad.r.flush(); err == nil || bad.r.Stats().FlushErrors != 1 {
		t.Fatalf("flush into a missing dir = %v, errors %d", err, bad.r.Stats().FlushErrors)
	}
	if err := bad.r.flush(); err == nil { // still dirty: retried
		t.Fatal("second flush did not retry")
	}
}
