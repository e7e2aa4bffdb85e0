package notp_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
)

// TestLifecycleSentinelsWrapTheRootOnes checks that every package's
// lifecycle sentinel matches the root one of the same kind with errors.Is,
// names its package, and is distinct from the other packages' sentinels.
func TestLifecycleSentinelsWrapTheRootOnes(t *testing.T) {
	cases := []struct {
		pkg  string
		err  error
		root error
	}{
		{"kernel", kernel.ErrClosed, notp.ErrClosed},
		{"kernel", kernel.ErrNotStarted, notp.ErrNotStarted},
		{"kernel", kernel.ErrAlreadyStarted, notp.ErrAlreadyStarted},
		{"genserver", genserver.ErrAlreadyStarted, notp.ErrAlreadyStarted},
		{"genserver", genserver.ErrNotStarted, notp.ErrNotStarted},
		{"genserver", genserver.ErrNilKernel, notp.ErrNilKernel},
		{"gossip", gossip.ErrClosed, notp.ErrClosed},
		{"gossip", gossip.ErrNotStarted, notp.ErrNotStarted},
		{"gossip", gossip.ErrAlreadyStarted, notp.ErrAlreadyStarted},
		{"gossip", gossip.ErrNilKernel, notp.ErrNilKernel},
		{"cluster", cluster.ErrClosed, notp.ErrClosed},
		{"cluster", cluster.ErrNotStarted, notp.ErrNotStarted},
		{"cluster", cluster.ErrAlreadyStarted, notp.ErrAlreadyStarted},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.root) {
			t.Errorf("%v does not wrap %v", c.err, c.root)
		}
		if !strings.HasPrefix(c.err.Error(), c.pkg+": ") {
			t.Errorf("%q does not name package %s", c.err, c.pkg)
		}
		for _, o := range cases {
			if o.pkg != c.pkg && errors.Is(c.err, o.err) {
				t.Errorf("%v matches another package's %v", c.err, o.err)
			}
		}
	}
}
