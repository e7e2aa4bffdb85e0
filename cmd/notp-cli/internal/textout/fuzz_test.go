package textout

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Any valid JSON a node replies with prints as text without panicking,
// every line ending in a newline; only nesting deeper than MaxDepth is
// refused (the CLI then prints the JSON form).
func FuzzWrite(f *testing.F) {
	for _, s := range []string{`"pong"`, `null`, `[]`, `{}`, `[{"id":"a","n":[1,2]},{"x":{"y":true}}]`,
		`{"a":{"b":[{"c":1}]},"d":[]}`, strings.Repeat("[", 40) + strings.Repeat("]", 40)} {
		f.Add([]byte(s))
	}
	var b bytes.Buffer
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		b.Reset()
		if err := Write(&b, data); err != nil {
			if !errors.Is(err, ErrTooDeep) {
				t.Fatalf("Write(%q): %v", data, err)
			}
			return
		}
		out := b.Bytes()
		if len(out) == 0 || out[len(out)-1] != '\n' {
			t.Fatalf("Write(%q) = %q", data, out)
		}
	})
}
