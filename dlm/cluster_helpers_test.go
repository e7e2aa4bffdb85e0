package dlm_test

import (
	"testing"

	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/dlm"
)

// form starts the cluster cc with a DLM of cfg beside every node. Each
// replica keeps its locks in its node's directory, so it restarts with
// them as after a crash (every grant was on disk before it was
// answered), or in memory when memory is set.
func form(t testing.TB, cc clustertest.Config, cfg dlm.Config, memory bool) (*clustertest.Cluster, *clustertest.Services[*dlm.DLM]) {
	t.Helper()
	cfg.Logger = clustertest.Logger(t)
	ds := clustertest.Run(&cc, func(c *clustertest.Cluster, i int) (*dlm.DLM, error) {
		cfg := cfg
		if !memory {
			cfg.Dir = c.Dir(i)
		}
		return dlm.New(c.Node(i), cfg)
	})
	return clustertest.Start(t, cc), ds
}
