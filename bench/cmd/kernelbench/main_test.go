package main

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as the server process: the parent side
// of the program re-executes os.Executable(), which under `go test` is this
// binary, with -serve first.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-serve" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestEndToEnd runs the program against every registered system with small
// counts and checks the JSON it prints.
func TestEndToEnd(t *testing.T) {
	systems := systemNames()
	var stdout, stderr bytes.Buffer
	args := []string{
		"-systems", strings.Join(systems, ","),
		"-n", "300", "-casts", "3000", "-warmup", "20", "-c", "8",
		"-duration", "5s", "-json", "-gomaxprocs", "2",
	}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("run exited %d; stderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(systems) {
		t.Fatalf("got %d JSON lines for %d systems:\n%s", len(lines), len(systems), stdout.String())
	}
	var seen []string
	for _, line := range lines {
		// The shape: exactly these keys, nothing else.
		var raw map[string]map[string]any
		var top map[string]any
		if err := json.Unmarshal([]byte(line), &top); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		wantTop := []string{"casts", "concurrent", "config", "gomaxprocs", "payload_bytes", "sequential", "system"}
		if got := sortedKeys(top); !slices.Equal(got, wantTop) {
			t.Errorf("top-level keys %v, want %v", got, wantTop)
		}
		raw = map[string]map[string]any{}
		for _, k := range []string{"sequential", "concurrent", "casts"} {
			m, ok := top[k].(map[string]any)
			if !ok {
				t.Fatalf("%s is %T, want an object", k, top[k])
			}
			raw[k] = m
		}
		for k, want := range map[string][]string{
			"sequential": {"calls", "calls_per_sec", "p50_us", "p99_us"},
			"concurrent": {"callers", "calls", "calls_per_sec"},
			"casts":      {"casts_per_sec", "received", "sent"},
		} {
			if got := sortedKeys(raw[k]); !slices.Equal(got, want) {
				t.Errorf("%s keys %v, want %v", k, got, want)
			}
		}

		var r Result
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("decode %q: %v", line, err)
		}
		seen = append(seen, r.System)
		if r.Config == "" || r.PayloadBytes != 32 || r.GOMAXPROCS != 2 {
			t.Errorf("%s: config %q payload %d", r.System, r.Config, r.PayloadBytes)
		}
		if r.Seq.Calls != 300 || r.Seq.P50us <= 0 || r.Seq.P99us < r.Seq.P50us || r.Seq.CallsPerSec <= 0 {
			t.Errorf("%s: bad sequential result %+v", r.System, r.Seq)
		}
		if r.Concurrent.Callers != 8 || r.Concurrent.Calls != 300 || r.Concurrent.CallsPerSec <= 0 {
			t.Errorf("%s: bad concurrent result %+v", r.System, r.Concurrent)
		}
		if r.Casts.Sent != 3000 || r.Casts.Received != 3000 || r.Casts.CastsPerSec <= 0 {
			t.Errorf("%s: bad casts result %+v", r.System, r.Casts)
		}
	}
	slices.Sort(seen)
	if !slices.Equal(seen, systems) {
		t.Errorf("systems in output %v, want %v", seen, systems)
	}
}

// TestTable checks the human-readable output. It prints given results rather
// than running the program again: protoactor-go's remote sets grpc's global
// logger in Start, which races with a previous remote's goroutines in the
// same process, so the test binary starts only one protoactor client.
func TestTable(t *testing.T) {
	var out bytes.Buffer
	printTable(&out, []Result{
		{System: "notp", Config: "cfg", Seq: SeqResult{P50us: 12.5, P99us: 40}, Concurrent: ConcResult{Callers: 64, CallsPerSec: 250000}, Casts: CastsResult{CastsPerSec: 2e6}},
		{System: "protoactor", Config: "cfg", Error: "boom"},
	})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "system") {
		t.Fatalf("unexpected table:\n%s", out.String())
	}
	for _, want := range []string{"notp", "12.5", "40.0", "250000", "2000000"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	if !strings.HasPrefix(lines[2], "protoactor ") || !strings.HasSuffix(lines[2], "boom") {
		t.Errorf("row %q", lines[2])
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-systems", "nosuch"},
		{"-systems", ""},
		{"-n", "0"},
		{"-casts", "-1"},
		{"-c", "0"},
		{"-warmup", "-1"},
		{"-payload", "-1"},
		{"-duration", "0s"},
		{"-gomaxprocs", "-1"},
		{"-bogus"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
		if stderr.Len() == 0 {
			t.Errorf("run(%q) printed no error", args)
		}
	}
}

func TestServeUnknownSystem(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-serve", "nosuch"}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "unknown system") {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestServeWithoutSecrets(t *testing.T) {
	for _, k := range []string{envCookie, envCert, envKey} {
		t.Setenv(k, "")
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-serve", "protoactor"}, &stdout, &stderr); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), envCookie) {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	if got := percentile(d, 0.5); got != 50*time.Microsecond {
		t.Errorf("p50 = %v", got)
	}
	if got := percentile(d, 0.99); got != 99*time.Microsecond {
		t.Errorf("p99 = %v", got)
	}
	if got := percentile(d[:1], 0.99); got != time.Microsecond {
		t.Errorf("p99 of one = %v", got)
	}
}

func TestProfilePath(t *testing.T) {
	for _, c := range [][3]string{
		{"", "notp", ""},
		{"cpu.prof", "notp", "cpu-notp.prof"},
		{"/tmp/x/cpu", "notp-tls", "/tmp/x/cpu-notp-tls"},
	} {
		if got := profilePath(c[0], c[1]); got != c[2] {
			t.Errorf("profilePath(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

func TestSecretsTLS(t *testing.T) {
	s, err := newSecrets()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range s.environ() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	got, err := secretsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if got.cookie != s.cookie || !bytes.Equal(got.certPEM, s.certPEM) || !bytes.Equal(got.keyPEM, s.keyPEM) {
		t.Fatal("secrets did not survive the environment")
	}
	if len(s.cookie) != 32 {
		t.Errorf("cookie %q", s.cookie)
	}
	tc, err := got.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(tc.Certificates) != 1 || tc.RootCAs == nil || tc.ClientCAs == nil {
		t.Errorf("incomplete TLS config %+v", tc)
	}
	bad := &secrets{cookie: "x", certPEM: []byte("junk"), keyPEM: []byte("junk")}
	if _, err := bad.tlsConfig(); err == nil {
		t.Error("tlsConfig accepted junk PEM")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestPollingModes runs -mode latency and -mode cpu with small counts and
// checks their rows.
func TestPollingModes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		rows []string // a row starting with each
	}{
		{[]string{"-mode", "latency", "-systems", "notp,notp-off", "-n", "200", "-warmup", "20", "-c", "4",
			"-rounds", "1", "-floor-runs", "2", "-duration", "5s"},
			[]string{"1     floor", "1     notp ", "1     notp-off"}},
		{[]string{"-mode", "cpu", "-systems", "notp,notp-off", "-conns", "3", "-rate", "100",
			"-rounds", "1", "-cpu-duration", "300ms"},
			[]string{"1     idle     notp ", "1     idle     notp-off", "1     sparse   notp ", "1     sparse   notp-off"}},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 0 {
			t.Fatalf("%v exited %d; stderr:\n%s\nstdout:\n%s", tc.args, code, stderr.String(), stdout.String())
		}
		out := stdout.String()
		if !strings.HasPrefix(out, "load averages") {
			t.Errorf("%v: output does not start with the load averages:\n%s", tc.args, out)
		}
		for _, row := range tc.rows {
			if !strings.Contains(out, "\n"+row) {
				t.Errorf("%v: no row starting %q in:\n%s", tc.args, row, out)
			}
		}
	}
	var stderr bytes.Buffer
	if code := run([]string{"-mode", "cpu", "-systems", "tcp"}, &bytes.Buffer{}, &stderr); code == 0 {
		t.Error("-mode cpu accepted a system that is not notp")
	}
	if code := run([]string{"-mode", "bogus", "-systems", "notp"}, &bytes.Buffer{}, &stderr); code != 2 {
		t.Errorf("-mode bogus exited %d, want 2", code)
	}
}
