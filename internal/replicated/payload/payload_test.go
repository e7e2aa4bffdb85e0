package payload

import (
	"strings"
	"testing"

	"github.com/notp-go/notp/internal/testutil"
)

type msg struct {
	ID string `msgpack:"id"`
	N  int    `msgpack:"n"`
}

func TestDecodeBudgets(t *testing.T) {
	ok := testutil.Msgpack(map[string]any{"id": "x", "n": 2})
	var m msg
	if err := Decode("payload", ok, len(ok), &m); err != nil || m != (msg{"x", 2}) {
		t.Fatalf("a payload of exactly max bytes: %+v %v", m, err)
	}
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"over max":       {ok[:len(ok)-1], ""}, // decoded with max one less below
		"empty":          {nil, "payload is not a map"},
		"array":          {testutil.Msgpack([]any{"x", 2}), "payload is not a map"},
		"string":         {testutil.Msgpack("x"), "payload is not a map"},
		"truncated map":  {ok[:3], "payload: "},
		"wrong type":     {testutil.Msgpack(map[string]any{"id": 5}), "payload: "},
		"huge bin claim": {[]byte{0x81, 0xa2, 'i', 'd', 0xc6, 0xff, 0xff, 0xff, 0xff}, "payload: "},
	} {
		max := 64
		if name == "over max" {
			c.b, max, c.want = ok, len(ok)-1, "over"
		}
		err := Decode("payload", c.b, max, &msg{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Decode = %v, want an error with %q", name, err, c.want)
		}
	}
}

func TestIsMapKnowsEveryMapHeader(t *testing.T) {
	for _, b := range [][]byte{{0x80}, {0x8f}, {0xde, 0, 0}, {0xdf, 0, 0, 0, 0}} {
		if !IsMap(b) {
			t.Errorf("%x is a map header", b)
		}
	}
	for _, b := range [][]byte{nil, {0x90}, {0xdc, 0, 0}, {0xc0}, {0xa1, 'x'}} {
		if IsMap(b) {
			t.Errorf("%x is no map header", b)
		}
	}
}

func TestValidName(t *testing.T) {
	for s, ok := range map[string]bool{
		"a":                               true,
		strings.Repeat("x", MaxNameLen):   true,
		"":                                false,
		strings.Repeat("x", MaxNameLen+1): false,
		"nul\x00":                         false,
		"\xff":                            false,
		"ünïcode":                         true,
	} {
		if err := ValidName("id", s); (err == nil) != ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", s, err, ok)
		}
	}
}

func TestValidTimeout(t *testing.T) {
	for ms, ok := range map[int64]bool{1: true, MaxTTL.Milliseconds(): true, 0: false, -1: false, MaxTTL.Milliseconds() + 1: false} {
		if err := ValidTimeout(ms); (err == nil) != ok {
			t.Errorf("ValidTimeout(%d) = %v, want ok=%v", ms, err, ok)
		}
	}
}

func TestEncodeRoundTripsAndPanicsOnAProgrammersError(t *testing.T) {
	var m msg
	if err := Decode("payload", Encode("svc", msg{"y", 3}), 64, &m); err != nil || m != (msg{"y", 3}) {
		t.Fatalf("round trip: %+v %v", m, err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(r.(string), "svc: encode chan int") {
			t.Fatalf("recovered %v, want an encode panic with the prefix", r)
		}
	}()
	Encode("svc", make(chan int))
}
