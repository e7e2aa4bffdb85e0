package gossip

import (
	"bytes"
	"testing"
	"time"

	"github.com/notp-go/notp/gossip/internal/mltransport"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/internal/testutil/mltest"
)

// mlKeysEqual reports whether n's memberlist keyring holds exactly the
// keys derived from its kernel's, with the same primary.
func mlKeysEqual(n *tnode) bool {
	kr := n.r.mlKeyring.Load()
	want := mltransport.SecretKeys(n.k)
	if kr == nil || len(want) == 0 {
		return false
	}
	have := kr.GetKeys()
	if len(have) != len(want) || !bytes.Equal(kr.GetPrimaryKey(), want[0]) {
		return false
	}
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || bytes.Equal(h, w)
		}
		if !found {
			return false
		}
	}
	return true
}

// memberlist's keyring follows the kernel's through a cookie rotation,
// and the members stay alive to each other all along: gossip encrypted
// with the new key is accepted everywhere before anyone sends it.
func TestMemberlistKeyringFollowsKernel(t *testing.T) {
	// A failure detector patient enough for a loaded machine: what this
	// test watches for is a member lost to undecryptable gossip, which no
	// patience survives.
	nodes := cluster(t, 3, func(c *Config) {
		ml := mltest.FastConfig()
		ml.ProbeTimeout, ml.SuspicionMult = 300*time.Millisecond, 6
		c.Memberlist = ml
	})
	const newCookie = "gossip rotation cookie 0123456789abcdef"
	oldCookie := testCookie
	step := func(what string, f func(n *tnode) error) {
		t.Helper()
		for _, n := range nodes {
			if err := f(n); err != nil {
				t.Fatalf("%s on %s: %v", what, n.id(), err)
			}
		}
		testutil.WaitFor(t, what+": memberlist keyrings in step", func() bool {
			for _, n := range nodes {
				if !mlKeysEqual(n) {
					return false
				}
			}
			return true
		})
		// A memberlist ping is encrypted with the sender's primary and
		// must be opened by the receiver's keyring: every pair, both ways.
		for _, n := range nodes {
			ml := n.r.mlRef.Load()
			for _, mem := range ml.Members() {
				if mem.Name == n.id() {
					continue
				}
				// Probes time out after 50 ms here: a loaded machine may
				// need a few.
				testutil.WaitFor(t, what+": "+n.id()+" pings "+mem.Name, func() bool {
					_, err := ml.Ping(mem.Name, addrString(mem.Address()))
					return err == nil
				})
			}
			for _, m := range nodes {
				if h := n.r.Health(m.id()); h != HealthAlive {
					t.Fatalf("%s: %s sees %s %v", what, n.id(), m.id(), h)
				}
			}
		}
	}
	step("install", func(n *tnode) error { return n.k.Keyring().Install(newCookie) })
	step("use", func(n *tnode) error { return n.k.Keyring().Use(newCookie) })
	step("remove", func(n *tnode) error { return n.k.Keyring().Remove(oldCookie) })
	if got := len(nodes[0].r.mlKeyring.Load().GetKeys()); got != 1 {
		t.Fatalf("memberlist holds %d keys after the rotation, want 1", got)
	}
}

// addrString is a net.Addr of a memberlist address string.
type addrString string

func (a addrString) Network() string { return "udp" }
func (a addrString) String() string  { return string(a) }
