package metrics_test

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/metrics"
)

// A Collector registered in your own registry: the kernel's series and
// those of a watched actor.
func Example() {
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Insecure: true})
	if err != nil {
		panic(err)
	}
	defer k.Close()
	kv, err := genserver.New(k, genserver.Config{Name: "kv"})
	if err != nil {
		panic(err)
	}
	c := metrics.New(k, nil) // no gossip ring: kernel and actors only
	if err := c.Watch(kv); err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "notp_kernel_connections_active", "notp_genserver_handled_total":
			m := mf.GetMetric()[0]
			labels := ""
			for _, l := range m.GetLabel() {
				labels += fmt.Sprintf("{%s=%q}", l.GetName(), l.GetValue())
			}
			fmt.Println(mf.GetType(), mf.GetName()+labels, m.GetGauge().GetValue()+m.GetCounter().GetValue())
		}
	}
	// Output:
	// COUNTER notp_genserver_handled_total{actor="kv"} 0
	// GAUGE notp_kernel_connections_active 0
}

// A package built on a node reports its own counters: it registers a
// Source on Start and calls the returned function on Stop.
func ExampleCollector_Register() {
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Insecure: true})
	if err != nil {
		panic(err)
	}
	defer k.Close()
	c := metrics.New(k, nil)
	var jobs atomic.Uint64 // the package's counter
	unregister, err := c.Register(func(emit func(metrics.Sample)) {
		emit(metrics.Sample{Name: "notp_jobs_done_total", Help: "Jobs done.", Kind: metrics.Counter,
			Labels: []metrics.Label{{Name: "queue", Value: "mail"}}, Value: float64(jobs.Load())})
	})
	if err != nil {
		panic(err)
	}
	defer unregister()
	jobs.Add(3)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "notp_jobs_done_total" {
			m := mf.GetMetric()[0]
			fmt.Println(mf.GetName(), m.GetLabel()[0].GetValue(), m.GetCounter().GetValue())
		}
	}
	// Output:
	// notp_jobs_done_total mail 3
}
