package dsm

import (
	"github.com/notp-go/notp/internal/testutil"
	"testing"
)

func TestDecodeRequestRejectsMalformedJobs(t *testing.T) {
	cases := []struct {
		name, event string
		data        []byte
	}{
		{"not a map", evCreate, testutil.Msgpack("s")},
		{"empty", evRead, nil},
		{"id not a string", evRead, testutil.Msgpack(map[string]any{"id": 1})},
		{"n not a number", evCreate, testutil.Msgpack(map[string]any{"id": "s", "n": "2"})},
		{"n zero", evCreate, testutil.Msgpack(map[string]any{"id": "s", "n": 0})},
		{"n over MaxSize", evCreate, testutil.Msgpack(map[string]any{"id": "s", "n": DefaultMaxSize + 1})},
		{"post without holder", evPost, testutil.Msgpack(map[string]any{"id": "s", "timeout": 100})},
		{"post without timeout", evPost, testutil.Msgpack(map[string]any{"id": "s", "holder": "h"})},
		{"post timeout negative", evPost, testutil.Msgpack(map[string]any{"id": "s", "holder": "h", "timeout": -5})},
		{"close holder not a string", evClose, testutil.Msgpack(map[string]any{"id": "s", "holder": 7})},
		{"missing id", evDestroy, testutil.Msgpack(map[string]any{})},
		{"unknown event", "grab", testutil.Msgpack(map[string]any{"id": "s"})},
		{"oversized", evRead, testutil.Msgpack(map[string]any{"id": string(make([]byte, 700))})},
	}
	for _, c := range cases {
		if r, err := decodeRequest(c.event, c.data, DefaultMaxSize); err == nil {
			t.Errorf("%s: accepted as %+v", c.name, r)
		}
	}
	for ev, r := range map[string]request{
		evCreate: {ID: "s", N: 2}, evRead: {ID: "s"}, evDestroy: {ID: "s"},
		evPost: {ID: "s", Holder: "h", Timeout: 10}, evClose: {ID: "s", Holder: "h"},
	} {
		if got, err := decodeRequest(ev, encode(r), DefaultMaxSize); err != nil || got != r {
			t.Errorf("%s: valid job %+v came back as %+v, %v", ev, r, got, err)
		}
	}
}

func TestDecodeHandoffRejectsBadHolders(t *testing.T) {
	for name, h := range map[string]handoff{
		"no id":            {N: 1},
		"n zero":           {ID: "s"},
		"duplicate":        {ID: "s", N: 2, Holders: []handedOff{{"a", 5}, {"a", 5}}},
		"no time left":     {ID: "s", N: 2, Holders: []handedOff{{"a", 0}}},
		"empty holder":     {ID: "s", N: 2, Holders: []handedOff{{"", 5}}},
		"too many holders": {ID: "s", N: 1, Holders: []handedOff{{"a", 5}, {"b", 5}}},
	} {
		if name == "too many holders" {
			if _, err := decodeHandoff(encode(h), 1); err == nil {
				t.Errorf("%s: accepted", name)
			}
			continue
		}
		if _, err := decodeHandoff(encode(h), DefaultMaxSize); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(evPost, encode(request{ID: "s", Holder: "h", Timeout: 10}))
	f.Add(evCreate, encode(request{ID: "s", N: 3}))
	f.Add(evRead, []byte{0x81, 0xa2, 'i', 'd', 0x01})
	f.Fuzz(func(t *testing.T, event string, b []byte) {
		r, err := decodeRequest(event, b, DefaultMaxSize)
		if err != nil {
			return
		}
		if again, err := decodeRequest(event, encode(r), DefaultMaxSize); err != nil || again != r {
			t.Fatalf("%+v does not round-trip: %+v %v", r, again, err)
		}
	})
}

func FuzzDecodeHandoff(f *testing.F) {
	f.Add(encode(handoff{ID: "s", N: 2, Holders: []handedOff{{"a", 5}}}))
	f.Add([]byte{0x83, 0xa2, 'i', 'd', 0xa1, 's'})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHandoff(b, 8)
		if err != nil {
			return
		}
		if _, err := decodeHandoff(encode(h), 8); err != nil {
			t.Fatalf("%+v does not round-trip: %v", h, err)
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	f.Add(encode(reply{OK: true, N: 2, Active: 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeReply(b)
		if err != nil {
			return
		}
		if again, err := decodeReply(encode(r)); err != nil || again != r {
			t.Fatalf("%+v does not round-trip", r)
		}
	})
}
