package dsm

import (
	"testing"

	"github.com/notp-go/notp/clustertest"
)

// form starts the cluster cc with a DSM of cfg beside every node. Each
// keeps the semaphores it owns in its node's directory, so it restarts
// with them as after a crash, or in memory when memory is set.
func form(t testing.TB, cc clustertest.Config, cfg Config, memory bool) (*clustertest.Cluster, *clustertest.Services[*DSM]) {
	t.Helper()
	cfg.Logger = clustertest.Logger(t)
	ss := clustertest.Run(&cc, func(c *clustertest.Cluster, i int) (*DSM, error) {
		cfg := cfg
		if !memory {
			cfg.Dir = c.Dir(i)
		}
		return New(c.Node(i), cfg)
	})
	return clustertest.Start(t, cc), ss
}
