package wire

import (
	"testing"

	"github.com/notp-go/notp/internal/replicated/payload"
	"github.com/notp-go/notp/internal/testutil"
)

func TestDecodeRequestRejectsMalformedJobs(t *testing.T) {
	cases := []struct {
		name, event string
		data        []byte
	}{
		{"empty", RLock, nil},
		{"not a map", RLock, testutil.Msgpack("id")},
		{"array", WLock, testutil.Msgpack([]any{"id", "h", 1000})},
		{"id not a string", RLock, testutil.Msgpack(map[string]any{"id": 5, "holder": "h", "timeout": 1000})},
		{"holder not a string", WLock, testutil.Msgpack(map[string]any{"id": "x", "holder": true, "timeout": 1000})},
		{"timeout not a number", WLock, testutil.Msgpack(map[string]any{"id": "x", "holder": "h", "timeout": "1s"})},
		{"no timeout", RLock, testutil.Msgpack(map[string]any{"id": "x", "holder": "h"})},
		{"negative timeout", RLock, testutil.Msgpack(map[string]any{"id": "x", "holder": "h", "timeout": -1})},
		{"timeout over payload.MaxTTL", WLock, testutil.Msgpack(map[string]any{"id": "x", "holder": "h", "timeout": payload.MaxTTL.Milliseconds() + 1})},
		{"missing holder", RUnlock, testutil.Msgpack(map[string]any{"id": "x"})},
		{"missing id", WUnlock, testutil.Msgpack(map[string]any{"holder": "h"})},
		{"commit without token", Commit, testutil.Msgpack(map[string]any{"id": "x", "holder": "h"})},
		{"unknown event", "steal", testutil.Msgpack(map[string]any{"id": "x", "holder": "h"})},
		{"oversized", RLock, testutil.Msgpack(map[string]any{"id": string(make([]byte, 600)), "holder": "h", "timeout": 1})},
		{"truncated", RLock, testutil.Msgpack(map[string]any{"id": "x", "holder": "h", "timeout": 1000})[:5]},
	}
	for _, c := range cases {
		if r, err := DecodeRequest(c.event, c.data); err == nil {
			t.Errorf("%s: accepted as %+v", c.name, r)
		}
	}
}

func TestDecodeRequestReturnsAValidJobUnchanged(t *testing.T) {
	want := Request{ID: "id", Holder: "h", Timeout: 1000}
	got, err := DecodeRequest(WLock, Encode(want))
	if err != nil || got != want {
		t.Fatalf("%+v %v", got, err)
	}
	want = Request{ID: "id", Holder: "h", Token: 7}
	if got, err := DecodeRequest(Commit, Encode(want)); err != nil || got != want {
		t.Fatalf("%+v %v", got, err)
	}
}

// FuzzDecodeRequest: no payload panics the decoder, and an accepted one
// re-encodes to a request that decodes the same.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(WLock, Encode(Request{ID: "id", Holder: "h", Timeout: 1000}))
	f.Add(Commit, Encode(Request{ID: "id", Holder: "h", Token: 3}))
	f.Add(RUnlock, []byte{0x81, 0xa2, 'i', 'd', 0xc0})
	f.Fuzz(func(t *testing.T, event string, b []byte) {
		r, err := DecodeRequest(event, b)
		if err != nil {
			return
		}
		again, err := DecodeRequest(event, Encode(r))
		if err != nil || again != r {
			t.Fatalf("%+v does not round-trip: %+v %v", r, again, err)
		}
	})
}

// FuzzDecodeReply: no reply from a peer panics the client.
func FuzzDecodeReply(f *testing.F) {
	f.Add(Encode(Reply{OK: true, Token: 9}))
	f.Add([]byte{0x80})
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
