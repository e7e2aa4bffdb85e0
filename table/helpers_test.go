package table

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/notp-go/notp/internal/testutil"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// durableConfig is a durable table in a fresh directory.
func durableConfig(t testing.TB) Config {
	return Config{Dir: t.TempDir(), Name: "t", Logger: testutil.Logger(t)}
}

func openT(t testing.TB, cfg Config) *Table {
	t.Helper()
	tb, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

// bothKinds runs fn against an in-memory table and a durable one, since
// notp's MTable and DTable share their data model.
func bothKinds(t *testing.T, fn func(t *testing.T, tb *Table)) {
	t.Run("memory", func(t *testing.T) { fn(t, openT(t, Config{})) })
	t.Run("durable", func(t *testing.T) { fn(t, openT(t, durableConfig(t))) })
}

// dump returns the table's contents as a comparable string map.
func dump(t testing.TB, tb *Table) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := tb.ForEach(context.Background(), func(k string, v Value) error {
		out[k] = v.String()
		return nil
	})
	must(t, err)
	return out
}

// String renders v for comparisons in tests.
func (v Value) String() string {
	var b bytes.Buffer
	b.WriteString(v.Kind.String())
	switch v.Kind {
	case KindScalar:
		b.WriteString(":" + string(v.Bytes))
	case KindSet:
		for _, m := range v.Members {
			b.WriteString(" " + m)
		}
	case KindHash:
		for _, f := range sortedKeys(v.Fields) {
			b.WriteString(" " + f + "=" + string(v.Fields[f]))
		}
	}
	return b.String()
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

func isWrongType(err error) bool { return errors.Is(err, ErrWrongType) }

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
