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
		// internal/wire holds their msgpack reader, which checks every
		// declared length against the input left (and imports only the
		// standard library and the root package).
		{"chash", []string{modulePath, modulePath + "/internal/wire"}, []string{
			"github.com/cespare/xxhash/v2", "github.com/google/btree", "github.com/vmihailenco/msgpack/v5"}},
		{"vclock", []string{modulePath + "/internal/wire"}, []string{"github.com/vmihailenco/msgpack/v5"}},
		// The wire codec and the kernel are hand-written over the standard
		// library: every byte from the network goes through code we own.
		// The key schedule's one outside import is argon2, which stretches
		// the cookie (never network input).
		{"internal/wire", []string{modulePath}, nil},
		{"internal/cookiekey", nil, []string{"golang.org/x/crypto/argon2"}},
		{"kernel", []string{modulePath, modulePath + "/internal/wire", modulePath + "/internal/cookiekey", modulePath + "/internal/lifecycle",
			modulePath + "/internal/latency"}, nil},
		{"internal/msgpackcheck", []string{modulePath + "/internal/wire"}, []string{"github.com/vmihailenco/msgpack/v5"}},
		// command is the protocol and its client: it speaks through the
		// kernel and genserver, never through gossip (whose stats it
		// carries as raw JSON), so clients such as notp-cli do not link
		// memberlist.
		{"command", []string{modulePath, modulePath + "/kernel", modulePath + "/genserver", modulePath + "/vclock",
			modulePath + "/internal/msgpackcheck"}, []string{"github.com/vmihailenco/msgpack/v5"}},
		{"internal/event", nil, nil},
		{"internal/lifecycle", nil, nil},
		{"internal/latency", nil, nil},
		{"genserver", []string{modulePath, modulePath + "/kernel", modulePath + "/internal/wire", modulePath + "/internal/msgpackcheck",
			modulePath + "/internal/event", modulePath + "/internal/lifecycle"}, []string{"github.com/vmihailenco/msgpack/v5"}},
		// memberlist stays behind gossip and its internal transport; the
		// command-line tool needs none of it.
		{"gossip/internal/mltransport", []string{modulePath + "/kernel", modulePath + "/gossip/internal/advertise"},
			[]string{"github.com/hashicorp/memberlist"}},
		// The advertised address is decided by standard-library code alone,
		// so its fuzz target links little and runs fast.
		{"gossip/internal/advertise", nil, nil},
		// The message and flush-file codecs link neither memberlist nor the
		// kernel, so their fuzz targets run fast.
		{"gossip/internal/codec", []string{modulePath, modulePath + "/vclock", modulePath + "/internal/msgpackcheck"},
			[]string{"github.com/vmihailenco/msgpack/v5"}},
		{"gossip", []string{modulePath, modulePath + "/chash", modulePath + "/vclock", modulePath + "/kernel",
			modulePath + "/gossip/internal/mltransport", modulePath + "/gossip/internal/codec", modulePath + "/internal/msgpackcheck",
			modulePath + "/internal/event", modulePath + "/internal/lifecycle"},
			[]string{"github.com/hashicorp/memberlist", "github.com/vmihailenco/msgpack/v5"}},
		// The Prometheus client stays in metrics (and cluster, which serves
		// it): kernel, genserver and gossip, whose rules above list no
		// such import, keep the counters it reads without depending on it.
		{"metrics", []string{modulePath + "/kernel", modulePath + "/genserver", modulePath + "/gossip",
			modulePath + "/internal/lifecycle", modulePath + "/internal/latency"},
			[]string{"github.com/prometheus/client_golang"}},
		{"cluster", []string{modulePath, modulePath + "/chash", modulePath + "/vclock", modulePath + "/kernel",
			modulePath + "/genserver", modulePath + "/gossip", modulePath + "/command", modulePath + "/internal/msgpackcheck",
			modulePath + "/metrics", modulePath + "/internal/lifecycle", modulePath + "/discover",
			modulePath + "/cluster/internal/cmdargs"},
			[]string{"github.com/hashicorp/memberlist", "github.com/prometheus/client_golang"}},
		// The command arguments' checks link package command alone, so
		// their fuzz target does not pay for memberlist and Prometheus.
		{"cluster/internal/cmdargs", []string{modulePath, modulePath + "/command", modulePath + "/internal/msgpackcheck"}, nil},
		// The lock and semaphore managers are actors on a cluster node that
		// persist through package table. They, and conflux, report their
		// counters through package metrics' sources, which adds no module:
		// cluster links it already.
		{"dlm", []string{modulePath, modulePath + "/cluster", modulePath + "/gossip", modulePath + "/genserver",
			modulePath + "/kernel", modulePath + "/table", modulePath + "/internal/msgpackcheck", modulePath + "/metrics",
			modulePath + "/dlm/internal/wire", modulePath + "/internal/replicated", modulePath + "/internal/replicated/payload"}, nil},
		{"dsm", []string{modulePath, modulePath + "/chash", modulePath + "/cluster", modulePath + "/gossip", modulePath + "/genserver",
			modulePath + "/kernel", modulePath + "/table", modulePath + "/internal/msgpackcheck", modulePath + "/metrics",
			modulePath + "/dsm/internal/wire", modulePath + "/internal/replicated", modulePath + "/internal/replicated/payload"}, nil},
		// What dlm and dsm share runs on a node's kernel but not on the
		// cluster or the ring; their wire codecs and the payload helpers
		// under them link nothing of the node, so the codecs' fuzz targets
		// stay small and fast.
		{"internal/replicated", []string{modulePath, modulePath + "/genserver", modulePath + "/kernel", modulePath + "/metrics",
			modulePath + "/table", modulePath + "/internal/lifecycle"}, nil},
		{"internal/replicated/payload", []string{modulePath + "/internal/msgpackcheck"}, []string{"github.com/vmihailenco/msgpack/v5"}},
		{"dlm/internal/wire", []string{modulePath + "/internal/replicated/payload"}, nil},
		{"dsm/internal/wire", []string{modulePath + "/internal/replicated/payload"}, nil},
		{"internal/replicated/replicatedtest", []string{modulePath + "/genserver", modulePath + "/kernel", modulePath + "/table"}, nil},
		// conflux is the one package that links Raft and its storage. It
		// speaks package command's raft protocol (cluster links it anyway).
		{"conflux", []string{modulePath, modulePath + "/kernel", modulePath + "/genserver", modulePath + "/gossip",
			modulePath + "/cluster", modulePath + "/command", modulePath + "/internal/msgpackcheck", modulePath + "/metrics",
			modulePath + "/internal/lifecycle", modulePath + "/internal/event", modulePath + "/conflux/internal/logentry"},
			[]string{"github.com/hashicorp/raft", "github.com/hashicorp/raft-boltdb/v2", "github.com/hashicorp/go-hclog",
				"github.com/vmihailenco/msgpack/v5"}},
		// The log entry layout is standard library only, so its fuzz
		// target links little.
		{"conflux/internal/logentry", nil, nil},
		{"internal/cookiefile", nil, nil},
		// The test helpers: testutil sits below every package with tests
		// (so it imports none of them), clustertest above cluster; it
		// parses nodes' /metrics with the exposition-format parser.
		// memberlist's test config is mltest's, so that the tests of
		// packages that run no memberlist (and their fuzz targets) do not
		// link it.
		{"internal/testutil", nil, []string{"github.com/vmihailenco/msgpack/v5"}},
		{"internal/testutil/mltest", nil, []string{"github.com/hashicorp/memberlist"}},
		{"clustertest", []string{modulePath, modulePath + "/cluster", modulePath + "/gossip", modulePath + "/kernel",
			modulePath + "/internal/faultnet", modulePath + "/internal/testutil", modulePath + "/internal/testutil/mltest",
			modulePath + "/metrics"},
			[]string{"github.com/hashicorp/memberlist", "github.com/prometheus/client_model", "github.com/prometheus/common"}},
		// Seed discovery is the standard library's resolver and nothing else.
		{"discover", nil, nil},
		// Tables are standard library only: their file format is read by
		// code we own, and a program that only needs a table pulls in
		// nothing else.
		{"table", []string{modulePath}, nil},
		{"cmd/notp-cli", []string{modulePath, modulePath + "/kernel", modulePath + "/genserver", modulePath + "/command",
			modulePath + "/internal/cookiefile", modulePath + "/cmd/notp-cli/internal/textout",
			modulePath + "/cmd/notp-cli/internal/cmdline"},
			[]string{"golang.org/x/term"}},
		// The command-line parser (flags, commands and their arguments) links
		// package command, the kernel (a cookie's fingerprint) and the cookie
		// file reader only, so its fuzz targets link little.
		{"cmd/notp-cli/internal/cmdline", []string{modulePath, modulePath + "/command", modulePath + "/kernel",
			modulePath + "/internal/cookiefile"}, nil},
		// The reply text renderer is standard library only, so its fuzz
		// target links little.
		{"cmd/notp-cli/internal/textout", nil, nil},
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
	for _, dir := range []string{"kernel", "genserver", "gossip", "gossip/internal/mltransport", "internal/wire", "chash", "vclock"} {
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
