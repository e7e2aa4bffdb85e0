package cookiefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, want string
		wantErr          error
	}{
		{"newline trimmed", file("nl", "cookie\n"), "cookie", nil},
		{"crlf trimmed", file("crlf", "cookie\r\n"), "cookie", nil},
		{"one newline only", file("nn", "cookie\n\n"), "cookie\n", nil},
		{"no newline", file("bare", "cookie"), "cookie", nil},
		{"largest", file("max", strings.Repeat("k", MaxSize)), strings.Repeat("k", MaxSize), nil},
		{"empty", file("empty", ""), "", ErrEmpty},
		{"only a newline", file("only", "\n"), "", ErrEmpty},
		{"too large", file("big", strings.Repeat("k", MaxSize+1)), "", ErrTooLarge},
		{"missing", filepath.Join(dir, "missing"), "", fs.ErrNotExist},
		{"a directory", dir, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(tt.path)
			switch {
			case tt.name == "a directory":
				if err == nil {
					t.Fatalf("Read of a directory = %q, want an error", got)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.path) {
					t.Fatalf("Read = %q, %v; want %v naming the path", got, err, tt.wantErr)
				}
			case err != nil || got != tt.want:
				t.Fatalf("Read = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
