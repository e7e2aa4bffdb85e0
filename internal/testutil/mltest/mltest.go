// Package mltest holds the memberlist config of the module's tests. It is
// apart from package testutil so that the tests of packages that do not
// run memberlist (kernel, genserver, table, vclock, chash) do not link it:
// Go's fuzz worker resets and scans the coverage counters of everything
// a test binary links on every execution, so each linked library slows
// every fuzz target of the package.
package mltest

import (
	"io"
	"time"

	"github.com/hashicorp/memberlist"
)

// FastConfig returns memberlist's local config with a failure detector
// tuned for nodes on loopback in one test process: a stopped node is seen
// failed within a second or two, while live nodes are not suspected on a
// loaded 2-core machine under -race. Its log output is discarded (gossip
// routes memberlist's logs to its own logger anyway). GossipToTheDeadTime
// keeps memberlist's default, so tests of splits shorter or longer than it
// set it themselves.
func FastConfig() *memberlist.Config {
	c := memberlist.DefaultLocalConfig()
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 150 * time.Millisecond
	c.GossipInterval = 50 * time.Millisecond
	c.PushPullInterval = 500 * time.Millisecond
	c.SuspicionMult = 3
	c.TCPTimeout = time.Second
	c.LogOutput = io.Discard
	return c
}
