package notp_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// modulePath is this module's import path.
const modulePath = "github.com/notp-go/notp"

// TestDependencyRules keeps the standalone packages standalone: a program
// that only shards keys (chash) or versions values (vclock) must not pull in
// the network stack. The rules are checked on the import lines of every
// non-test file, so a violation fails here before it reaches a user.
func TestDependencyRules(t *testing.T) {
	rules := []struct {
		dir      string
		internal []string // packages of this module it may import
		external []string // third-party modules it may import (prefixes)
	}{
		{".", nil, nil},
		// internal/msgpackread is their msgpack reader that checks every
		// declared length against the input left.
		{"internal/msgpackread", nil, []string{"github.com/vmihailenco/msgpack/v5"}},
		{"chash", []string{modulePath, modulePath + "/internal/msgpackread"}, []string{
			"github.com/cespare/xxhash/v2", "github.com/google/btree", "github.com/vmihailenco/msgpack/v5"}},
		{"vclock", []string{modulePath + "/internal/msgpackread"}, []string{"github.com/vmihailenco/msgpack/v5"}},
		// The wire codec and the kernel are hand-written over the standard
		// library: every byte from the network goes through code we own.
		// The key schedule's one outside import is argon2, which stretches
		// the cookie (never network input).
		{"internal/wire", []string{modulePath}, nil},
		{"internal/cookiekey", nil, []string{"golang.org/x/crypto/argon2"}},
		{"kernel", []string{modulePath, modulePath + "/internal/wire", modulePath + "/internal/cookiekey"}, nil},
		{"internal/msgpackcheck", nil, []string{"github.com/vmihailenco/msgpack/v5"}},
		{"command", []string{modulePath, modulePath + "/internal/msgpackcheck"}, []string{"github.com/vmihailenco/msgpack/v5"}},
		{"genserver", []string{modulePath, modulePath + "/kernel", modulePath + "/internal/wire", modulePath + "/internal/msgpackcheck"}, []string{"github.com/vmihailenco/msgpack/v5"}},
		// memberlist stays behind internal/mltransport and gossip; the
		// command-line tool needs none of it.
		{"internal/mltransport", []string{modulePath + "/kernel"}, []string{"github.com/hashicorp/memberlist"}},
		{"gossip", []string{modulePath, modulePath + "/chash", modulePath + "/vclock", modulePath + "/kernel",
			modulePath + "/internal/mltransport", modulePath + "/internal/msgpackcheck"},
			[]string{"github.com/hashicorp/memberlist", "github.com/vmihailenco/msgpack/v5"}},
		// The Prometheus client stays in metrics (and cluster, which serves
		// it): kernel, genserver and gossip, whose rules above list no
		// such import, keep the counters it reads without depending on it.
		{"metrics", []string{modulePath + "/kernel", modulePath + "/genserver", modulePath + "/gossip",
			modulePath + "/internal/mltransport"},
			[]string{"github.com/prometheus/client_golang"}},
		{"cluster", []string{modulePath, modulePath + "/chash", modulePath + "/vclock", modulePath + "/kernel",
			modulePath + "/genserver", modulePath + "/gossip", modulePath + "/command", modulePath + "/internal/msgpackcheck",
			modulePath + "/metrics"},
			[]string{"github.com/hashicorp/memberlist", "github.com/prometheus/client_golang"}},
		// conflux is the one package that links Raft and its storage.
		{"conflux", []string{modulePath, modulePath + "/kernel", modulePath + "/genserver", modulePath + "/gossip",
			modulePath + "/cluster", modulePath + "/internal/msgpackcheck"},
			[]string{"github.com/hashicorp/raft", "github.com/hashicorp/raft-boltdb/v2", "github.com/hashicorp/go-hclog",
				"github.com/vmihailenco/msgpack/v5"}},
		{"internal/cookiefile", nil, nil},
		{"cmd/notp-cli", []string{modulePath, modulePath + "/kernel", modulePath + "/genserver", modulePath + "/command",
			modulePath + "/internal/cookiefile"},
			[]string{"golang.org/x/term"}},
	}
	for _, r := range rules {
		t.Run(r.dir, func(t *testing.T) {
			imports := packageImports(t, r.dir)
			if len(imports) == 0 && r.dir != "." {
				t.Fatalf("package %s has no imports: is it missing?", r.dir)
			}
			for _, imp := range imports {
				if !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
					continue // standard library
				}
				if slices.Contains(r.internal, imp) {
					continue
				}
				if !strings.HasPrefix(imp, modulePath+"/") && imp != modulePath &&
					slices.ContainsFunc(r.external, func(p string) bool { return imp == p || strings.HasPrefix(imp, p+"/") }) {
					continue
				}
				t.Errorf("package %s imports %s, which its dependency rule forbids", r.dir, imp)
			}
		})
	}
}

// TestCoreFreeOfPrometheus keeps the Prometheus client out of the core
// packages even if their rules above grow: a program that embeds a kernel,
// actors or a ring must not pull in an HTTP metrics stack. The collector
// lives in package metrics and reads the counters these packages keep.
func TestCoreFreeOfPrometheus(t *testing.T) {
	for _, dir := range []string{"kernel", "genserver", "gossip", "internal/mltransport", "internal/wire", "chash", "vclock"} {
		for _, imp := range packageImports(t, dir) {
			if strings.HasPrefix(imp, "github.com/prometheus/") || imp == modulePath+"/metrics" {
				t.Errorf("package %s imports %s: metrics belong in package metrics", dir, imp)
			}
		}
	}
}

// packageImports returns the imports of the non-test Go files in dir.
func packageImports(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}
