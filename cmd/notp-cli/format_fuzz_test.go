package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/notp-go/notp/command"
)

// Any JSON a node replies with prints as text without panicking, every
// line ending in a newline; nesting deeper than maxTextDepth falls back to
// the JSON form.
func FuzzFormatText(f *testing.F) {
	for _, s := range []string{`"pong"`, `null`, `[]`, `{}`, `[{"id":"a","n":[1,2]},{"x":{"y":true}}]`,
		`{"a":{"b":[{"c":1}]},"d":[]}`, strings.Repeat("[", 40) + strings.Repeat("]", 40)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		out := formatText(command.Reply{OK: true, Data: data})
		if len(out) == 0 || out[len(out)-1] != '\n' {
			t.Fatalf("formatText(%q) = %q", data, out)
		}
	})
}
