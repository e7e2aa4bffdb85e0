// Package replicatedtest holds the test helpers of the replicated
// services (dlm, dsm): tables for their state's load tests and the check
// that a peer's malformed requests get error replies.
package replicatedtest

import (
	"context"
	"errors"
	"testing"

	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/table"
)

// Table opens a table named name in dir ("" keeps it in memory), closed
// at cleanup.
func Table(t testing.TB, dir, name string) *table.Table {
	t.Helper()
	st, err := table.Open(table.Config{Dir: dir, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// ClosedTable returns a durable table named name that is already closed,
// so every read of it fails.
func ClosedTable(t testing.TB, name string) *table.Table {
	t.Helper()
	st := Table(t, t.TempDir(), name)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return st
}

// BadRequest is a malformed request a peer may send and the code of the
// error reply it must get.
type BadRequest struct {
	Event string
	Data  []byte
	Code  string
}

// ExpectErrorReplies sends each request to the genserver name on k's own
// node and reports every one whose reply is not a kernel.RemoteError of
// its code.
func ExpectErrorReplies(ctx context.Context, t testing.TB, k *kernel.Kernel, name string, reqs []BadRequest) {
	t.Helper()
	for _, r := range reqs {
		_, err := genserver.CallRaw(ctx, k, genserver.Target{Name: name}, r.Event, r.Data)
		if !errors.Is(err, &kernel.RemoteError{Code: r.Code}) {
			t.Errorf("%s %x: %v, want %s", r.Event, r.Data, err, r.Code)
		}
	}
}

// Expect returns a check of a state operation's result (rep, err): err
// must be nil and ok(rep) must be want, else the test ends with what.
// It returns rep, so the check wraps the call: Expect(...)(r.lock(id)).
func Expect[R any](t testing.TB, what string, want bool, ok func(R) bool) func(R, error) R {
	return func(rep R, err error) R {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := ok(rep); got != want {
			t.Fatalf("%s: ok = %v, want %v", what, got, want)
		}
		return rep
	}
}
