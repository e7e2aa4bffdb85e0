package clustertest

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/metrics"
)

// MaxScrapeBytes bounds the body Scrape reads.
const MaxScrapeBytes = 8 << 20

// Metrics is one scrape of a node's metrics endpoint, by family name.
type Metrics map[string]*dto.MetricFamily

// Scrape GETs n's /metrics (n must run with cluster.Config.MetricsAddr
// set, e.g. "127.0.0.1:0" through Config.Configure) and parses it with the
// Prometheus exposition-format parser, failing t on any error.
func Scrape(t testing.TB, n *cluster.Node) Metrics {
	t.Helper()
	addr := n.MetricsAddr()
	if addr == nil {
		t.Fatalf("clustertest: node %s serves no metrics (set cluster.Config.MetricsAddr)", n.Self().ID)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr.String() + metrics.Path)
	if err != nil {
		t.Fatalf("clustertest: scrape %s: %v", n.Self().ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("clustertest: scrape %s: status %d", n.Self().ID, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, MaxScrapeBytes))
	if err != nil {
		t.Fatalf("clustertest: parse the scrape of %s: %v", n.Self().ID, err)
	}
	return mfs
}

// Value returns the value of the counter or gauge name whose labels
// include want (a histogram gives its sample count), and whether there is
// one.
func (m Metrics) Value(name string, want map[string]string) (float64, bool) {
	mf := m[name]
next:
	for _, s := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range s.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return s.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return s.GetGauge().GetValue(), true
		case dto.MetricType_HISTOGRAM:
			return float64(s.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// MustValue is Value failing t when the series is missing.
func (m Metrics) MustValue(t testing.TB, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := m.Value(name, want)
	if !ok {
		t.Fatalf("clustertest: no series %s%v in the scrape (families: %v)", name, want, slices.Sorted(maps.Keys(m)))
	}
	return v
}

// Text lists the scrape's families whose name starts with prefix in the
// text format, for test logs and failure messages.
func (m Metrics) Text(prefix string) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if strings.HasPrefix(name, prefix) {
			if _, err := expfmt.MetricFamilyToText(&b, m[name]); err != nil {
				fmt.Fprintf(&b, "# %s: %v\n", name, err)
			}
		}
	}
	return b.String()
}
