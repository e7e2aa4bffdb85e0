package cmdline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/notp-go/notp/internal/cookiefile"
)

// The cookie comes from --key (or -a), else --key-file, else NOTP_COOKIE.
func TestKeySources(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, crlf := file("good", "from-file\n"), file("crlf", "from-file\r\n")
	bare := file("bare", "from-file")
	tests := []struct {
		name    string
		src     keySources
		want    string
		wantErr string
	}{
		{"flag wins", keySources{key: "from-flag", keySet: true, file: good, env: "from-env"}, "from-flag", ""},
		{"empty flag wins", keySources{keySet: true, file: good, env: "from-env"}, "", ""},
		{"file before env", keySources{file: good, env: "from-env"}, "from-file", ""},
		{"crlf trimmed", keySources{file: crlf}, "from-file", ""},
		{"no newline", keySources{file: bare}, "from-file", ""},
		{"env last", keySources{env: "from-env"}, "from-env", ""},
		{"nothing", keySources{}, "", ""},
		{"missing file", keySources{file: filepath.Join(dir, "missing"), env: "from-env"}, "", "no such file"},
		{"empty file", keySources{file: file("empty", "")}, "", "is empty"},
		{"only a newline", keySources{file: file("nl", "\n")}, "", "is empty"},
		{"oversized file", keySources{file: file("big", strings.Repeat("k", cookiefile.MaxSize+1))}, "", "larger than 4096 bytes"},
		{"largest file", keySources{file: file("max", strings.Repeat("k", cookiefile.MaxSize))}, strings.Repeat("k", cookiefile.MaxSize), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.src.resolve()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--key-file") {
					t.Fatalf("resolve = %q, %v; want an error about %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("resolve = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
