package notp

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestNodeAccessors(t *testing.T) {
	// A node keeps id, host and port.
	n := Node{ID: "a", Host: "localhost", Port: 7022}
	if got, want := n.Addr(), "localhost:7022"; got != want {
		t.Errorf("Addr() = %q, want %q", got, want)
	}
	if got, want := n.String(), "a@localhost:7022"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (Node{ID: "b", Host: "::1", Port: 1}).Addr(), "[::1]:1"; got != want {
		t.Errorf("IPv6 Addr() = %q, want %q", got, want)
	}
	if n.IsZero() || !(Node{}).IsZero() {
		t.Errorf("IsZero wrong")
	}
}

func TestNodeEquality(t *testing.T) {
	// Equal to itself, unequal when any field differs.
	n := Node{ID: "a", Host: "localhost", Port: 7022}
	if n != n {
		t.Fatal("node not equal to itself")
	}
	for _, o := range []Node{
		{ID: "b", Host: "localhost", Port: 7022},
		{ID: "a", Host: "127.0.0.1", Port: 7022},
		{ID: "a", Host: "localhost", Port: 7023},
	} {
		if n == o {
			t.Errorf("%v == %v", n, o)
		}
	}
}

func TestNodeValidate(t *testing.T) {
	// notp's setters ignored wrong types; in Go that becomes validation: the
	// type system fixes the field types; Validate rejects bad values.
	tests := []struct {
		name string
		n    Node
		ok   bool
	}{
		{"valid", Node{ID: "a", Host: "h", Port: 1}, true},
		{"max port", Node{ID: "a", Host: "h", Port: 65535}, true},
		{"empty id", Node{Host: "h", Port: 1}, false},
		{"id with @", Node{ID: "a@b", Host: "h", Port: 1}, false},
		{"id with space", Node{ID: "a b", Host: "h", Port: 1}, false},
		{"empty host", Node{ID: "a", Port: 1}, false},
		{"port 0", Node{ID: "a", Host: "h"}, false},
		{"port too big", Node{ID: "a", Host: "h", Port: 65536}, false},
		{"negative port", Node{ID: "a", Host: "h", Port: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.n.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidNode) {
				t.Fatalf("error %v does not wrap ErrInvalidNode", err)
			}
		})
	}
}

func TestParseNode(t *testing.T) {
	n, err := ParseNode("a@localhost:7022")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Node{ID: "a", Host: "localhost", Port: 7022}); n != want {
		t.Fatalf("ParseNode = %v, want %v", n, want)
	}
	v6, err := ParseNode("b@[::1]:9")
	if err != nil || v6 != (Node{ID: "b", Host: "::1", Port: 9}) {
		t.Fatalf("ParseNode v6 = %v, %v", v6, err)
	}
	for _, bad := range []string{"", "a", "a@host", "a@host:x", "@h:1", "a@:1", "a@h:0", "a@h:70000"} {
		if _, err := ParseNode(bad); !errors.Is(err, ErrInvalidNode) {
			t.Errorf("ParseNode(%q) err = %v, want ErrInvalidNode", bad, err)
		}
	}
}

func TestNodeEncodings(t *testing.T) {
	// The serialised form is exactly {id, host, port} and a node rebuilt from
	// it equals the original.
	n := Node{ID: "a", Host: "localhost", Port: 7022}
	js, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(js), `{"id":"a","host":"localhost","port":7022}`; got != want {
		t.Errorf("JSON = %s, want %s", got, want)
	}
	var back Node
	if err := json.Unmarshal(js, &back); err != nil || back != n {
		t.Errorf("JSON round trip = %v, %v", back, err)
	}

	mp, err := msgpack.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(mp, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m["id"] != "a" || m["host"] != "localhost" {
		t.Errorf("msgpack form = %v", m)
	}
	back = Node{}
	if err := msgpack.Unmarshal(mp, &back); err != nil || back != n {
		t.Errorf("msgpack round trip = %v, %v", back, err)
	}
}
