package wire

import (
	"testing"

	"github.com/notp-go/notp/internal/testutil"
)

// defaultMaxSize is dsm.DefaultMaxSize, the size bound a DSM decodes with
// unless configured otherwise.
const defaultMaxSize = 1024

func TestDecodeRequestRejectsMalformedJobs(t *testing.T) {
	cases := []struct {
		name, event string
		data        []byte
	}{
		{"not a map", Create, testutil.Msgpack("s")},
		{"empty", Read, nil},
		{"id not a string", Read, testutil.Msgpack(map[string]any{"id": 1})},
		{"n not a number", Create, testutil.Msgpack(map[string]any{"id": "s", "n": "2"})},
		{"n zero", Create, testutil.Msgpack(map[string]any{"id": "s", "n": 0})},
		{"n over MaxSize", Create, testutil.Msgpack(map[string]any{"id": "s", "n": defaultMaxSize + 1})},
		{"post without holder", Post, testutil.Msgpack(map[string]any{"id": "s", "timeout": 100})},
		{"post without timeout", Post, testutil.Msgpack(map[string]any{"id": "s", "holder": "h"})},
		{"post timeout negative", Post, testutil.Msgpack(map[string]any{"id": "s", "holder": "h", "timeout": -5})},
		{"close holder not a string", Close, testutil.Msgpack(map[string]any{"id": "s", "holder": 7})},
		{"missing id", Destroy, testutil.Msgpack(map[string]any{})},
		{"unknown event", "grab", testutil.Msgpack(map[string]any{"id": "s"})},
		{"oversized", Read, testutil.Msgpack(map[string]any{"id": string(make([]byte, 700))})},
	}
	for _, c := range cases {
		if r, err := DecodeRequest(c.event, c.data, defaultMaxSize); err == nil {
			t.Errorf("%s: accepted as %+v", c.name, r)
		}
	}
	for ev, r := range map[string]Request{
		Create: {ID: "s", N: 2}, Read: {ID: "s"}, Destroy: {ID: "s"},
		Post: {ID: "s", Holder: "h", Timeout: 10}, Close: {ID: "s", Holder: "h"},
	} {
		if got, err := DecodeRequest(ev, Encode(r), defaultMaxSize); err != nil || got != r {
			t.Errorf("%s: valid job %+v came back as %+v, %v", ev, r, got, err)
		}
	}
}

func TestDecodeHandoffRejectsBadHolders(t *testing.T) {
	for name, h := range map[string]HandoffMsg{
		"no id":            {N: 1},
		"n zero":           {ID: "s"},
		"duplicate":        {ID: "s", N: 2, Holders: []HandedOff{{"a", 5}, {"a", 5}}},
		"no time left":     {ID: "s", N: 2, Holders: []HandedOff{{"a", 0}}},
		"empty holder":     {ID: "s", N: 2, Holders: []HandedOff{{"", 5}}},
		"too many holders": {ID: "s", N: 1, Holders: []HandedOff{{"a", 5}, {"b", 5}}},
	} {
		if name == "too many holders" {
			if _, err := DecodeHandoff(Encode(h), 1); err == nil {
				t.Errorf("%s: accepted", name)
			}
			continue
		}
		if _, err := DecodeHandoff(Encode(h), defaultMaxSize); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(Post, Encode(Request{ID: "s", Holder: "h", Timeout: 10}))
	f.Add(Create, Encode(Request{ID: "s", N: 3}))
	f.Add(Read, []byte{0x81, 0xa2, 'i', 'd', 0x01})
	f.Fuzz(func(t *testing.T, event string, b []byte) {
		r, err := DecodeRequest(event, b, defaultMaxSize)
		if err != nil {
			return
		}
		if again, err := DecodeRequest(event, Encode(r), defaultMaxSize); err != nil || again != r {
			t.Fatalf("%+v does not round-trip: %+v %v", r, again, err)
		}
	})
}

func FuzzDecodeHandoff(f *testing.F) {
	f.Add(Encode(HandoffMsg{ID: "s", N: 2, Holders: []HandedOff{{"a", 5}}}))
	f.Add([]byte{0x83, 0xa2, 'i', 'd', 0xa1, 's'})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHandoff(b, 8)
		if err != nil {
			return
		}
		if _, err := DecodeHandoff(Encode(h), 8); err != nil {
			t.Fatalf("%+v does not round-trip: %v", h, err)
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	f.Add(Encode(Reply{OK: true, N: 2, Active: 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeReply(b)
		if err != nil {
			return
		}
		if again, err := DecodeReply(Encode(r)); err != nil || again != r {
			t.Fatalf("%+v does not round-trip", r)
		}
	})
}
