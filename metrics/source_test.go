package metrics_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/notp-go/notp/metrics"
)

func scalar(t *testing.T, mfs map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	mf := mfs[name]
	if mf == nil || len(mf.Metric) != 1 {
		t.Fatalf("%s: want one series, got %v", name, mf)
	}
	m := mf.Metric[0]
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s: not a counter or gauge", name)
	return 0
}

func TestSourceSamplesAreReportedAndChecked(t *testing.T) {
	c := metrics.New(newKernel(t), nil)
	var h metrics.LatencyHistogram
	h.Observe(3 * time.Millisecond)
	h.Observe(40 * time.Second) // above every bound
	var emitLate func(metrics.Sample)
	unregister, err := c.Register(func(emit func(metrics.Sample)) {
		emitLate = emit
		g := func(v string) []metrics.Label { return []metrics.Label{{"group", v}} }
		emit(metrics.Sample{Name: "notp_test_ops_total", Help: "Ops.", Kind: metrics.Counter, Labels: g("a"), Value: 3})
		emit(metrics.Sample{Name: "notp_test_ops_total", Help: "Ops.", Kind: metrics.Counter, Labels: g("b"), Value: 4})
		emit(metrics.Sample{Name: "notp_test_depth", Help: "Depth.", Kind: metrics.Gauge, Value: 7})
		hs := h.Snapshot()
		emit(metrics.Sample{Name: "notp_test_op_duration_seconds", Help: "Op time.", Kind: metrics.Histogram, Histogram: &hs})
		// Each of these breaks a rule and is dropped.
		emit(metrics.Sample{Name: "other_ops_total", Help: "x", Kind: metrics.Counter})                                  // prefix
		emit(metrics.Sample{Name: "notp_test_ops_total", Help: "Ops.", Kind: metrics.Counter, Labels: g("a"), Value: 9}) // duplicate
		emit(metrics.Sample{Name: "notp_test_ops_total", Help: "Other.", Kind: metrics.Counter, Labels: g("c")})         // help differs
		emit(metrics.Sample{Name: "notp_test_ops_total", Help: "Ops.", Kind: metrics.Gauge, Labels: g("d")})             // kind differs
		emit(metrics.Sample{Name: "notp_test_x", Help: "x", Kind: metrics.Gauge, Labels: make([]metrics.Label, metrics.MaxLabels+1)})
		emit(metrics.Sample{Name: "notp_test_y", Help: "y", Kind: metrics.Gauge, Labels: g(strings.Repeat("v", metrics.MaxLabelValueLen+1))})
		emit(metrics.Sample{Name: "notp_test_z", Help: "z", Kind: metrics.Gauge, Labels: []metrics.Label{{"bad-name", "v"}}})
		emit(metrics.Sample{Name: "notp_test_h_seconds", Help: "h", Kind: metrics.Histogram})                    // no histogram
		emit(metrics.Sample{Name: "notp_kernel_calls_total", Help: "Calls.", Kind: metrics.Counter, Value: 1e9}) // the Collector's own
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(func(func(metrics.Sample)) { panic("source bug") }); err != nil {
		t.Fatal(err)
	}
	mfs := gatherLoose(t, c)
	ops := mfs["notp_test_ops_total"]
	if ops == nil || len(ops.Metric) != 2 || ops.Metric[0].Counter.GetValue() != 3 || ops.Metric[1].Counter.GetValue() != 4 {
		t.Fatalf("notp_test_ops_total = %v, want a=3 and b=4", ops)
	}
	if got := scalar(t, mfs, "notp_test_depth"); got != 7 {
		t.Errorf("notp_test_depth = %v, want 7", got)
	}
	hist := mfs["notp_test_op_duration_seconds"].GetMetric()[0].GetHistogram()
	if hist.GetSampleCount() != 2 || hist.GetSampleSum() < 40 {
		t.Errorf("histogram count %d sum %v, want 2 and >= 40", hist.GetSampleCount(), hist.GetSampleSum())
	}
	for _, b := range hist.GetBucket() {
		if b.GetUpperBound() == 0.005 && b.GetCumulativeCount() != 1 {
			t.Errorf("bucket le=0.005 holds %d, want 1", b.GetCumulativeCount())
		}
	}
	for _, name := range []string{"other_ops_total", "notp_test_x", "notp_test_y", "notp_test_z", "notp_test_h_seconds"} {
		if mfs[name] != nil {
			t.Errorf("%s reported, want it dropped", name)
		}
	}
	if got := scalar(t, mfs, "notp_kernel_calls_total"); got == 1e9 {
		t.Error("a source overwrote the kernel's calls")
	}
	if got := scalar(t, mfs, "notp_metrics_samples_dropped_total"); got != 9 {
		t.Errorf("samples dropped = %v, want 9", got)
	}
	if got := scalar(t, mfs, "notp_metrics_source_panics_total"); got != 1 {
		t.Errorf("source panics = %v, want 1", got)
	}
	if got := scalar(t, mfs, "notp_metrics_sources"); got != 2 {
		t.Errorf("sources = %v, want 2", got)
	}

	emitLate(metrics.Sample{Name: "notp_test_late", Help: "late", Kind: metrics.Gauge}) // after its scrape
	unregister()
	unregister() // idempotent
	mfs = gatherLoose(t, c)
	if mfs["notp_test_ops_total"] != nil || mfs["notp_test_late"] != nil {
		t.Error("an unregistered source is still reported")
	}
	if got := scalar(t, mfs, "notp_metrics_samples_dropped_total"); got != 10 {
		t.Errorf("samples dropped = %v, want 10 (one emitted after the scrape)", got)
	}
}

func TestSourceBudgets(t *testing.T) {
	c := metrics.New(newKernel(t), nil)
	if _, err := c.Register(nil); err == nil {
		t.Error("Register(nil) succeeded")
	}
	var unregs []func()
	for i := 0; i < metrics.MaxSources; i++ {
		u, err := c.Register(func(func(metrics.Sample)) {})
		if err != nil {
			t.Fatalf("source %d: %v", i, err)
		}
		unregs = append(unregs, u)
	}
	if _, err := c.Register(func(func(metrics.Sample)) {}); !errors.Is(err, metrics.ErrTooManySources) {
		t.Fatalf("source past the limit: %v, want ErrTooManySources", err)
	}
	unregs[0]()
	if _, err := c.Register(func(func(metrics.Sample)) {}); err != nil {
		t.Fatalf("source after an unregister: %v", err)
	}
	unregs[1]()

	// One source flooding a scrape is cut at MaxSamples.
	lbl := func(i int) []metrics.Label {
		return []metrics.Label{{"i", strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))}}
	}
	if _, err := c.Register(func(emit func(metrics.Sample)) {
		for i := 0; i < metrics.MaxSamples+10; i++ {
			emit(metrics.Sample{Name: "notp_test_flood", Help: "f", Kind: metrics.Gauge, Labels: lbl(i)})
		}
	}); err != nil {
		t.Fatal(err)
	}
	mfs := gatherLoose(t, c)
	if got := len(mfs["notp_test_flood"].GetMetric()); got != metrics.MaxSamples {
		t.Errorf("flood reported %d series, want %d", got, metrics.MaxSamples)
	}
	if got := scalar(t, mfs, "notp_metrics_samples_dropped_total"); got != 10 {
		t.Errorf("samples dropped = %v, want 10", got)
	}
}
