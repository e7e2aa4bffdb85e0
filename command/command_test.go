package command_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/internal/testutil"
)

func TestArgsRoundTrip(t *testing.T) {
	n := notp.Node{ID: "a", Host: "10.0.0.1", Port: 7022}
	cases := []command.Args{
		{},
		{ID: "ring"},
		{Force: true},
		{Node: &n},
		{Node: &n, Weight: 3, Force: true},
		{Node: &n, Weight: -1}, // ≤ 0 means the rfactor; it travels as is
		{Nodes: []notp.Node{{ID: "c", Host: "h", Port: 3}, n, {ID: "b", Host: "h", Port: 2}}, Weight: 5},
	}
	for _, a := range cases {
		b, err := command.EncodeArgs(a)
		if err != nil {
			t.Fatalf("EncodeArgs(%+v): %v", a, err)
		}
		got, err := command.DecodeArgs(b)
		if err != nil {
			t.Fatalf("DecodeArgs(EncodeArgs(%+v)): %v", a, err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Fatalf("round trip: got %+v, want %+v", got, a)
		}
	}
	// An empty payload (notp's null data) is the zero Args.
	if got, err := command.DecodeArgs(nil); err != nil || !reflect.DeepEqual(got, command.Args{}) {
		t.Fatalf("DecodeArgs(nil) = %+v, %v", got, err)
	}
}

// Payloads that do not decode, and nodes that are not valid, are rejected
// with an error (the server turns it into an ok:false reply instead of notp's
// silence).
func TestDecodeArgsRejects(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string][]byte{
		"garbage":         {0xc1},
		"truncated map":   enc(map[string]any{"id": "abc"})[:3],
		"id not a string": enc(map[string]any{"id": 42}),
		"node not a map":  enc(map[string]any{"node": "a@h:1"}),
		"nodes not list":  enc(map[string]any{"nodes": map[string]any{"id": "a"}}),
		"node empty id":   enc(map[string]any{"node": map[string]any{"id": "", "host": "h", "port": 1}}),
		"node port 0":     enc(map[string]any{"node": map[string]any{"id": "a", "host": "h", "port": 0}}),
		"node port big":   enc(map[string]any{"node": map[string]any{"id": "a", "host": "h", "port": 65536}}),
		"node no host":    enc(map[string]any{"node": map[string]any{"id": "a", "port": 1}}),
		"nodes[1] bad":    enc(map[string]any{"nodes": []any{map[string]any{"id": "a", "host": "h", "port": 1}, map[string]any{"id": "b@c", "host": "h", "port": 1}}}),
		"weight a string": enc(map[string]any{"weight": "3"}),
		"force a string":  enc(map[string]any{"force": "yes"}),
	}
	for name, b := range cases {
		if a, err := command.DecodeArgs(b); err == nil {
			t.Errorf("%s: decoded as %+v", name, a)
		} else if !strings.HasPrefix(err.Error(), "command: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
	_, err := command.DecodeArgs(enc(map[string]any{"node": map[string]any{"id": "a", "host": "h", "port": 0}}))
	if !errors.Is(err, notp.ErrInvalidNode) {
		t.Fatalf("invalid node error %v does not wrap notp.ErrInvalidNode", err)
	}
}

func TestReplyRoundTrip(t *testing.T) {
	data, err := command.OK(map[string]any{"id": "a", "host": "h", "port": 1})
	if err != nil {
		t.Fatal(err)
	}
	pong, _ := command.OK("pong")
	empty, _ := command.OK(nil)
	failed := command.Fail(command.CodeFailed, "'x' is not defined in this ring.")
	failed.Error.Fields = map[string]string{"id": "unknown"}
	for _, r := range []command.Reply{data, pong, empty, failed, command.Fail("", "no code")} {
		b, err := command.EncodeReply(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := command.DecodeReply(b)
		if err != nil {
			t.Fatalf("DecodeReply(EncodeReply(%+v)): %v", r, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip: got %+v, want %+v", got, r)
		}
	}
	if string(pong.Data) != `"pong"` || empty.Data != nil || !empty.OK {
		t.Fatalf("OK helper: %q %+v", pong.Data, empty)
	}
	if _, err := command.OK(make(chan int)); err == nil {
		t.Fatal("OK accepted data JSON cannot encode")
	}
}

func TestReplyJSONShape(t *testing.T) {
	r, _ := command.OK([]int{1, 2})
	if b, _ := json.Marshal(r); string(b) != `{"ok":true,"data":[1,2]}` {
		t.Fatalf("ok reply JSON %s", b)
	}
	f := command.Fail(command.CodeUnknownCommand, "Cannot run against unknown command 'x'")
	if b, _ := json.Marshal(f); string(b) != `{"ok":false,"error":{"message":"Cannot run against unknown command 'x'","code":"UNKNOWN_COMMAND"}}` {
		t.Fatalf("failed reply JSON %s", b)
	}
}

func TestDecodeReplyRejects(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good, _ := command.EncodeReply(command.Reply{OK: true, Data: json.RawMessage(`{"a":1}`)})
	cases := map[string][]byte{
		"empty":             nil,
		"garbage":           {0xc1},
		"truncated":         good[:len(good)-2],
		"not a map":         enc([]int{1}),
		"ok with error":     enc(map[string]any{"ok": true, "error": map[string]any{"message": "x"}}),
		"failed, no error":  enc(map[string]any{"ok": false}),
		"no fields at all":  enc(map[string]any{}),
		"data not JSON":     enc(map[string]any{"ok": true, "data": []byte("{")}),
		"data blank":        enc(map[string]any{"ok": true, "data": []byte(" ")}),
		"ok not a bool":     enc(map[string]any{"ok": "yes"}),
		"error not a map":   enc(map[string]any{"ok": false, "error": "boom"}),
		"message not a str": enc(map[string]any{"ok": false, "error": map[string]any{"message": 1}}),
	}
	for name, b := range cases {
		if r, err := command.DecodeReply(b); err == nil {
			t.Errorf("%s: decoded as %+v", name, r)
		} else if !strings.HasPrefix(err.Error(), "command: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}

// A payload of a few bytes declaring a huge str, bin, array or map is
// rejected before the decoder allocates the declared size (it used to
// allocate 4 GB for the 10-byte reply below), as are trailing bytes.
func TestDecodeForgedLengths(t *testing.T) {
	cases := map[string][]byte{
		"bin32 4GB data":      []byte("\x81\xa4data\xc6\xff\xff\x80\xff"),
		"str32 id":            []byte("\x81\xa2id\xdb\xff\xff\xff\xff"),
		"array32 nodes":       []byte("\x81\xa5nodes\xdd\x7f\xff\xff\xff"),
		"map32 top":           {0xdf, 0xff, 0xff, 0xff, 0xff},
		"map16 error fields":  []byte("\x82\xa2ok\xc2\xa5error\x81\xa6fields\xde\xff\xff"),
		"ext32":               {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},
		"deep nesting":        append(bytes.Repeat([]byte{0x91}, 100), 0xc0),
		"trailing bytes":      append(mustReply(t, command.Reply{OK: true}), 0xc0),
		"truncated int64":     {0x81, 0xa6, 'w', 'e', 'i', 'g', 'h', 't', 0xd3, 0x00},
		"invalid code inside": {0x81, 0xa2, 'i', 'd', 0xc1},
	}
	for name, b := range cases {
		var errA, errR error
		grew := testutil.Allocated(func() {
			_, errA = command.DecodeArgs(b)
			_, errR = command.DecodeReply(b)
		})
		if errA == nil || errR == nil {
			t.Errorf("%s: DecodeArgs err %v, DecodeReply err %v", name, errA, errR)
		}
		if grew > 1<<20 {
			t.Errorf("%s: decoding allocated %d bytes", name, grew)
		}
	}
	// Well-formed encodings with the wide length forms still pass.
	node := []byte("\x83\xa2id\xa1a\xa4host\xd9\x01h\xa4port\x01") // {id: "a", host: str8 "h", port: 1}
	wide := [][]byte{
		append([]byte("\x81\xa5nodes\xdd\x00\x00\x00\x01"), node...), // array32 of one
		append([]byte("\x81\xa5nodes\xdc\x00\x01"), node...),         // array16 of one
		append([]byte("\xdf\x00\x00\x00\x01\xa4node"), node...),      // map32 of one
		[]byte("\xde\x00\x01\xa2id\xdb\x00\x00\x00\x01x"),            // map16, str32
		[]byte("\x81\xa2id\xda\x00\x01x"),                            // str16
	}
	for _, b := range wide {
		if a, err := command.DecodeArgs(b); err != nil {
			t.Errorf("% x: %v", b, err)
		} else if a.ID != "x" && (a.Node == nil || *a.Node != (notp.Node{ID: "a", Host: "h", Port: 1})) &&
			(len(a.Nodes) != 1 || a.Nodes[0] != (notp.Node{ID: "a", Host: "h", Port: 1})) {
			t.Errorf("% x decoded as %+v", b, a)
		}
	}
}

func mustReply(t *testing.T, r command.Reply) []byte {
	t.Helper()
	b, err := command.EncodeReply(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKnown(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range command.Names {
		if !command.Known(n) || seen[n] {
			t.Fatalf("%q unknown or listed twice", n)
		}
		seen[n] = true
	}
	if len(command.Names) != 20 {
		t.Fatalf("%d commands, want 20", len(command.Names))
	}
	for _, n := range []string{"", "INSPECT", "help", "exit", "stop"} {
		if command.Known(n) {
			t.Fatalf("Known(%q) = true", n)
		}
	}
}

func ExampleDecodeReply() {
	// What a command server sends for "get x" when x is not in the ring.
	b, _ := command.EncodeReply(command.Fail(command.CodeFailed, "'x' is not defined in this ring."))

	r, err := command.DecodeReply(b)
	if err != nil {
		fmt.Println("malformed:", err)
		return
	}
	fmt.Println(r.OK, r.Error.Code, r.Error.Message)
	// Output: false FAILED 'x' is not defined in this ring.
}

func ExampleEncodeArgs() {
	n := notp.Node{ID: "node4", Host: "10.0.0.4", Port: 7022}
	b, _ := command.EncodeArgs(command.Args{Node: &n, Weight: 3})

	a, _ := command.DecodeArgs(b)
	fmt.Println(a.Node, a.Weight, a.Force)
	// Output: node4@10.0.0.4:7022 3 false
}

func BenchmarkDecodeArgs(b *testing.B) {
	nodes := []notp.Node{{ID: "a", Host: "10.0.0.1", Port: 7022}, {ID: "b", Host: "10.0.0.2", Port: 7022}, {ID: "c", Host: "10.0.0.3", Port: 7022}}
	p, err := command.EncodeArgs(command.Args{Nodes: nodes, Weight: 3, Force: true})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := command.DecodeArgs(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeReply(b *testing.B) {
	r, err := command.OK(map[string]any{"ring": map[string]int{"a": 3, "b": 3, "c": 3}, "rfactor": 3})
	if err != nil {
		b.Fatal(err)
	}
	p := mustReplyB(b, r)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := command.DecodeReply(p); err != nil {
			b.Fatal(err)
		}
	}
}

func mustReplyB(b *testing.B, r command.Reply) []byte {
	b.Helper()
	p, err := command.EncodeReply(r)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// lookup's key and list length are bounded at decoding: a key over
// MaxKeyLen bytes or n outside 0..MaxLookupN is ErrInvalidArgs.
func TestDecodeArgsLookupBounds(t *testing.T) {
	for _, a := range []command.Args{
		{Key: strings.Repeat("k", command.MaxKeyLen)}, {Key: "k", N: command.MaxLookupN}, {Key: "k"},
	} {
		b, _ := command.EncodeArgs(a)
		got, err := command.DecodeArgs(b)
		if err != nil || got.Key != a.Key || got.N != a.N {
			t.Fatalf("DecodeArgs(key of %d bytes, n %d) = %+v, %v", len(a.Key), a.N, got.N, err)
		}
	}
	for _, a := range []command.Args{
		{Key: strings.Repeat("k", command.MaxKeyLen+1)}, {Key: "k", N: command.MaxLookupN + 1}, {Key: "k", N: -1},
	} {
		b, _ := command.EncodeArgs(a)
		if _, err := command.DecodeArgs(b); !errors.Is(err, command.ErrInvalidArgs) {
			t.Fatalf("DecodeArgs(key of %d bytes, n %d) = %v, want ErrInvalidArgs", len(a.Key), a.N, err)
		}
	}
}
