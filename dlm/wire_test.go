package dlm

import (
	"github.com/notp-go/notp/internal/testutil"
	"testing"
)

func TestDecodeRequestRejectsMalformedJobs(t *testing.T) {
	cases := []struct {
		name, event string
		data        []byte
	}{
		{"empty", evRLock, nil},
		{"not a map", evRLock, testutil.Msgpack("id")},
		{"array", evWLock, testutil.Msgpack([]any{"id", "h", 1000})},
		{"id not a string", evRLock, testutil.Msgpack(map[string]any{"id": 5, "holder": "h", "timeout": 1000})},
		{"holder not a string", evWLock, testutil.Msgpack(map[string]any{"id": "x", "holder": true, "timeout": 1000})},
		{"timeout not a number", evWLock, testutil.Msgpack(map[string]any{"id": "x", "holder": "h", "timeout": "1s"})},
		{"no timeout", evRLock, testutil.Msgpack(map[string]any{"id": "x", "holder": "h"})},
		{"negative timeout", evRLock, testutil.Msgpack(map[string]any{"id": "x", "holder": "h", "timeout": -1})},
		{"timeout over MaxTTL", evWLock, testutil.Msgpack(map[string]any{"id": "x", "holder": "h", "timeout": MaxTTL.Milliseconds() + 1})},
		{"missing holder", evRUnlock, testutil.Msgpack(map[string]any{"id": "x"})},
		{"missing id", evWUnlock, testutil.Msgpack(map[string]any{"holder": "h"})},
		{"commit without token", evCommit, testutil.Msgpack(map[string]any{"id": "x", "holder": "h"})},
		{"unknown event", "steal", testutil.Msgpack(map[string]any{"id": "x", "holder": "h"})},
		{"oversized", evRLock, testutil.Msgpack(map[string]any{"id": string(make([]byte, 600)), "holder": "h", "timeout": 1})},
		{"truncated", evRLock, testutil.Msgpack(map[string]any{"id": "x", "holder": "h", "timeout": 1000})[:5]},
	}
	for _, c := range cases {
		if r, err := decodeRequest(c.event, c.data); err == nil {
			t.Errorf("%s: accepted as %+v", c.name, r)
		}
	}
}

func TestDecodeRequestReturnsAValidJobUnchanged(t *testing.T) {
	want := request{ID: "id", Holder: "h", Timeout: 1000}
	got, err := decodeRequest(evWLock, encode(want))
	if err != nil || got != want {
		t.Fatalf("%+v %v", got, err)
	}
	want = request{ID: "id", Holder: "h", Token: 7}
	if got, err := decodeRequest(evCommit, encode(want)); err != nil || got != want {
		t.Fatalf("%+v %v", got, err)
	}
}

// FuzzDecodeRequest: no payload panics the decoder, and an accepted one
// re-encodes to a request that decodes the same.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(evWLock, encode(request{ID: "id", Holder: "h", Timeout: 1000}))
	f.Add(evCommit, encode(request{ID: "id", Holder: "h", Token: 3}))
	f.Add(evRUnlock, []byte{0x81, 0xa2, 'i', 'd', 0xc0})
	f.Fuzz(func(t *testing.T, event string, b []byte) {
		r, err := decodeRequest(event, b)
		if err != nil {
			return
		}
		again, err := decodeRequest(event, encode(r))
		if err != nil || again != r {
			t.Fatalf("%+v does not round-trip: %+v %v", r, again, err)
		}
	})
}

// FuzzDecodeReply: no reply from a peer panics the client.
func FuzzDecodeReply(f *testing.F) {
	f.Add(encode(reply{OK: true, Token: 9}))
	f.Add([]byte{0x80})
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
