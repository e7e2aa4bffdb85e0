package dsm

import (
	"errors"
	"testing"

	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/internal/replicated/payload"
)

// New refuses a nil node with ErrInvalidConfig before it looks at the
// Config.
func TestNewNilNode(t *testing.T) {
	_, err := New(nil, Config{MaxSize: -1})
	if !errors.Is(err, ErrInvalidConfig) || err.Error() != "dsm: invalid config: nil node" {
		t.Fatalf("New(nil) = %v, want ErrInvalidConfig: nil node", err)
	}
}

// CloseAsync checks its id and holder before it casts: an invalid one
// fails with ErrInvalidArgument around the name check's own error.
func TestCloseAsyncInvalidArguments(t *testing.T) {
	_, ss := form(t, clustertest.Config{Nodes: 1}, Config{}, true)
	for _, c := range []struct{ id, holder, what, bad string }{
		{"", "h", "id", ""},
		{"s", "a\x00b", "holder", "a\x00b"},
	} {
		err := ss.At(0).CloseAsync(c.id, c.holder)
		want := payload.ValidName(c.what, c.bad)
		if !errors.Is(err, ErrInvalidArgument) || err.Error() != ErrInvalidArgument.Error()+": "+want.Error() {
			t.Errorf("CloseAsync(%q, %q) = %v, want ErrInvalidArgument: %v", c.id, c.holder, err, want)
		}
	}
	if n := ss.At(0).Stats().Closes; n != 0 {
		t.Fatalf("%d closes counted", n)
	}
}
