package chash

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp"
)

func sampleRing() *Ring {
	r := New(3, 2)
	for i := range 5 {
		r.Insert(notp.Node{ID: fmt.Sprint("node", i), Host: "10.0.0.1", Port: 7000 + i}, 0)
	}
	r.Insert(nd("heavy"), 9)
	return r
}

func TestMsgpackRoundTrip(t *testing.T) {
	src := sampleRing()
	data, err := msgpack.Marshal(src)
	if err != nil {
		t.Fatal(err)
	}
	got := New(1, 1)
	if err := msgpack.Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(src) || got.RFactor() != 3 || got.PFactor() != 2 {
		t.Fatal("msgpack round trip changed the ring")
	}
	// The generic form decodes to {rfactor, pfactor, tokens:[{token, node}]}.
	var generic map[string]any
	if err := msgpack.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	toks, _ := generic["tokens"].([]any)
	if len(toks) != src.Size() || generic["rfactor"] == nil || generic["pfactor"] == nil {
		t.Fatalf("unexpected msgpack form: %v", generic)
	}
	// A ring embedded as a field round-trips too.
	type holder struct{ Ring *Ring }
	data, err = msgpack.Marshal(holder{src})
	if err != nil {
		t.Fatal(err)
	}
	var h holder
	if err := msgpack.Unmarshal(data, &h); err != nil || !h.Ring.Equal(src) {
		t.Fatalf("embedded ring: %v", err)
	}
}

func TestJSONLargeTokensAreStrings(t *testing.T) {
	data, err := json.Marshal(sampleRing())
	if err != nil {
		t.Fatal(err)
	}
	var generic struct {
		Tokens []map[string]any `json:"tokens"`
	}
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	for _, tk := range generic.Tokens {
		if _, ok := tk["token"].(string); !ok {
			t.Fatalf("token %v is not a JSON string", tk["token"])
		}
	}
}

// TestDecodeRejects checks that every kind of corrupt or forged encoding is
// an error wrapping ErrInvalidRing and leaves the ring unchanged.
func TestDecodeRejects(t *testing.T) {
	a1, a2, b1 := Token("a", 1), Token("a", 2), Token("b", 1)
	tok := func(t uint64, id string) wireToken { return wireToken{t, nd(id)} }
	ordered := func(x, y wireToken) []wireToken {
		if itemLess(item{x.Token, x.Node.ID}, item{y.Token, y.Node.ID}) {
			return []wireToken{x, y}
		}
		return []wireToken{y, x}
	}
	cases := []struct {
		name string
		w    wireRing
	}{
		{"zero rfactor", wireRing{0, 1, nil}},
		{"negative pfactor", wireRing{1, -1, nil}},
		{"empty id", wireRing{1, 1, []wireToken{{Token("", 1), notp.Node{}}}}},
		{"forged token", wireRing{1, 1, []wireToken{tok(12345, "a")}}},
		{"missing vnode 1", wireRing{1, 1, []wireToken{tok(a2, "a")}}},
		{"duplicate token", wireRing{1, 1, []wireToken{tok(a1, "a"), tok(a1, "a")}}},
		{"out of order", wireRing{1, 1, reverse(ordered(tok(a1, "a"), tok(b1, "b")))}},
		{"two node values", wireRing{1, 1, ordered(tok(a1, "a"), wireToken{a2, notp.Node{ID: "a", Host: "x", Port: 1}})}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			js, err := json.Marshal(c.w)
			if err != nil {
				t.Fatal(err)
			}
			mp := encodeWireMsgpack(t, c.w)
			r := ringOf(1, 1, "keep")
			if err := json.Unmarshal(js, r); !errors.Is(err, ErrInvalidRing) {
				t.Errorf("JSON: err = %v, want ErrInvalidRing", err)
			}
			if err := msgpack.Unmarshal(mp, r); !errors.Is(err, ErrInvalidRing) {
				t.Errorf("msgpack: err = %v, want ErrInvalidRing", err)
			}
			if !r.Equal(ringOf(1, 1, "keep")) || r.RFactor() != 1 {
				t.Error("a failed decode changed the ring")
			}
		})
	}
	for _, bad := range []string{`{`, `[]`, `{"rfactor":"x"}`, `{"rfactor":1,"pfactor":1,"tokens":[{"token":1}]}`} {
		var r Ring
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("JSON %s decoded without error", bad)
		}
	}
	keep := ringOf(1, 1, "keep")
	if err := json.Unmarshal([]byte("null"), keep); err != nil || keep.Size() != 1 {
		t.Errorf("JSON null: err %v, size %d; want a no-op", err, keep.Size())
	}
	// msgpack (the library, before DecodeMsgpack is reached) resets the
	// target of a nil to its zero value: an empty, usable ring.
	if err := msgpack.Unmarshal([]byte{0xc0}, keep); err != nil || keep.Size() != 0 || keep.RFactor() != DefaultRFactor {
		t.Errorf("msgpack nil: err %v, size %d", err, keep.Size())
	}
	var r Ring
	if err := msgpack.Unmarshal([]byte{0x81, 0xa6, 't', 'o', 'k', 'e', 'n', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}, &r); !errors.Is(err, ErrInvalidRing) {
		t.Errorf("forged array length: err = %v", err)
	}
}

func reverse(ts []wireToken) []wireToken { return []wireToken{ts[1], ts[0]} }

// encodeWireMsgpack writes w in the ring's msgpack layout, bypassing the
// validation a Ring would enforce.
func encodeWireMsgpack(t *testing.T, w wireRing) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(enc.EncodeMapLen(3))
	must(enc.EncodeString("rfactor"))
	must(enc.EncodeInt(int64(w.RFactor)))
	must(enc.EncodeString("pfactor"))
	must(enc.EncodeInt(int64(w.PFactor)))
	must(enc.EncodeString("tokens"))
	must(enc.EncodeArrayLen(len(w.Tokens)))
	for _, tk := range w.Tokens {
		must(encodeToken(enc, tk))
	}
	return buf.Bytes()
}

func FuzzDecodeMsgpack(f *testing.F) {
	for _, r := range []*Ring{New(1, 1), ringOf(1, 1, "a"), sampleRing()} {
		data, err := msgpack.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{0x81, 0xa6, 't', 'o', 'k', 'e', 'n', 's', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Ring
		if err := msgpack.Unmarshal(data, &r); err != nil {
			if !errors.Is(err, ErrInvalidRing) && !strings.HasPrefix(err.Error(), "msgpack:") && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error neither ErrInvalidRing nor a msgpack error: %v", err)
			}
			return
		}
		checkReencode(t, &r, msgpack.Marshal, func(b []byte, r *Ring) error { return msgpack.Unmarshal(b, r) })
	})
}

func FuzzDecodeJSON(f *testing.F) {
	for _, r := range []*Ring{New(1, 1), ringOf(1, 1, "a"), sampleRing()} {
		data, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"rfactor":1,"pfactor":1,"tokens":[{"token":"1","node":{"id":"a"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Ring
		if err := json.Unmarshal(data, &r); err != nil {
			if !errors.Is(err, ErrInvalidRing) && !strings.HasPrefix(err.Error(), "json:") && !strings.Contains(err.Error(), "invalid character") && !strings.Contains(err.Error(), "unexpected end") {
				t.Fatalf("error neither ErrInvalidRing nor a JSON syntax error: %v", err)
			}
			return
		}
		checkReencode(t, &r, func(v any) ([]byte, error) { return json.Marshal(v) }, func(b []byte, r *Ring) error { return json.Unmarshal(b, r) })
	})
}

// checkReencode: a successful decode re-encodes to a ring that decodes Equal,
// and the decoded ring answers lookups.
func checkReencode(t *testing.T, r *Ring, enc func(any) ([]byte, error), dec func([]byte, *Ring) error) {
	t.Helper()
	data, err := enc(r)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	var again Ring
	if err := dec(data, &again); err != nil {
		t.Fatalf("decoding the re-encoding: %v", err)
	}
	if !again.Equal(r) || again.RFactor() != r.RFactor() || again.PFactor() != r.PFactor() {
		t.Fatal("re-encoded ring differs")
	}
	if r.Size() > 0 {
		if _, ok := r.OwnerString("k"); !ok {
			t.Fatal("non-empty decoded ring finds nothing")
		}
		_ = r.RangeNext([]byte("k"), 3)
		for _, n := range r.Nodes() {
			_ = r.Next(n.ID, 2)
		}
	}
}
