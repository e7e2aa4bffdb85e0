package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/notp-go/notp/kernel"
)

// kernelOnly collects the kernel series of one fixed Stats snapshot.
type kernelOnly struct{ s kernel.Stats }

func (k kernelOnly) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range kernelMetrics {
		ch <- m.desc
	}
}

func (k kernelOnly) Collect(ch chan<- prometheus.Metric) { emit(ch, kernelMetrics, &k.s) }

// Every polling counter of kernel.Stats is exported under its own name:
// hits and misses as counts, PollNanos as seconds, and the polls capped
// by MaxPollers and stopped on oversubscribed cores, each with its help.
func TestKernelPollMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(kernelOnly{kernel.Stats{PollHits: 3, PollMisses: 5, PollNanos: 1_500_000_000, PollCapped: 7, PollContended: 11}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"notp_kernel_poll_hits_total":      3,
		"notp_kernel_poll_misses_total":    5,
		"notp_kernel_poll_seconds_total":   1.5,
		"notp_kernel_poll_capped_total":    7,
		"notp_kernel_poll_contended_total": 11,
	}
	for _, mf := range mfs {
		w, ok := want[mf.GetName()]
		if !ok {
			continue
		}
		delete(want, mf.GetName())
		if got := mf.GetMetric()[0].GetCounter().GetValue(); got != w || mf.GetHelp() == "" {
			t.Errorf("%s = %v (help %q), want %v", mf.GetName(), got, mf.GetHelp(), w)
		}
	}
	for name := range want {
		t.Errorf("no counter %s", name)
	}
}
