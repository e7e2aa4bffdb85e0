package metrics

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/notp-go/notp/internal/latency"
	"github.com/notp-go/notp/kernel"
)

// Budgets of the sources registered with [Collector.Register]: a package
// reporting per lock, per key or per request would otherwise grow every
// scrape without bound.
const (
	// MaxSources bounds the sources one Collector reads.
	MaxSources = 64
	// MaxSamples bounds the samples one source emits per scrape; the
	// rest are dropped (and counted).
	MaxSamples = 512
	// MaxLabels bounds the labels of one sample.
	MaxLabels = 4
	// MaxLabelValueLen bounds a label value's length in bytes.
	MaxLabelValueLen = 128
)

// ErrTooManySources: the Collector already reads MaxSources sources.
var ErrTooManySources = errors.New("metrics: too many sources registered")

// Kind is the Prometheus type of a [Sample].
type Kind uint8

// The kinds of a Sample.
const (
	// Counter is a count that only grows (its name ends in _total).
	Counter Kind = iota
	// Gauge is a value now.
	Gauge
	// Histogram is a latency histogram (Sample.Histogram; its name ends
	// in _seconds).
	Histogram
)

// Label is a label of a Sample.
type Label struct{ Name, Value string }

// Sample is one series value a [Source] emits at scrape time.
type Sample struct {
	// Name follows Prometheus conventions and must start with "notp_":
	// notp_<pkg>_<name>_<unit>[_total]. The prefixes of the Collector's
	// own series (notp_kernel_, notp_gossip_, notp_memberlist_,
	// notp_genserver_, notp_metrics_) are refused.
	Name string
	// Help describes the series; every sample of one Name must carry
	// the same Help, Kind and label names.
	Help string
	Kind Kind
	// Labels are at most MaxLabels, their values at most
	// MaxLabelValueLen bytes of valid UTF-8.
	Labels []Label
	// Value is the counter's or gauge's value.
	Value float64
	// Histogram is a Histogram sample's snapshot (its bounds and sum are
	// reported in seconds).
	Histogram *kernel.Histogram
}

// Source emits a package's samples when the Collector is scraped, by
// calling emit once per sample. It runs on the scraping goroutine, must
// not block, and may run for concurrent scrapes at once; emit called
// after the source returned drops the sample. A panic in a source
// is recovered and counted (notp_metrics_source_panics_total); samples
// that break the rules of [Sample] are dropped and counted
// (notp_metrics_samples_dropped_total).
type Source func(emit func(Sample))

// source is a registered Source; id tells two registrations apart.
type source struct {
	id uint64
	fn Source
}

// sourceState is the Collector's part for registered sources.
type sourceState struct {
	mu      sync.Mutex
	nextID  uint64
	sources []source

	panics  atomic.Uint64
	dropped atomic.Uint64
}

var (
	sourcePanicsDesc = newDesc("notp_metrics_source_panics_total",
		"Panics recovered in registered metric sources (should stay 0).")
	samplesDroppedDesc = newDesc("notp_metrics_samples_dropped_total",
		"Samples of registered sources dropped: bad names or labels, inconsistent help or kind, duplicates, over budget.")
	sourcesDesc = newDesc("notp_metrics_sources", "Metric sources registered now.")
)

// Register adds src to the sources read at each scrape and returns the
// function that removes it (idempotent). It fails with ErrTooManySources
// past MaxSources.
func (c *Collector) Register(src Source) (unregister func(), err error) {
	if src == nil {
		return nil, errors.New("metrics: Register of a nil source")
	}
	s := &c.src
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sources) >= MaxSources {
		return nil, fmt.Errorf("%w (limit %d)", ErrTooManySources, MaxSources)
	}
	s.nextID++
	id := s.nextID
	s.sources = append(s.sources, source{id: id, fn: src})
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, o := range s.sources {
			if o.id == id {
				s.sources = append(s.sources[:i:i], s.sources[i+1:]...)
				return
			}
		}
	}, nil
}

// family is what the first sample of a name fixed for the scrape.
type family struct {
	help   string
	kind   Kind
	labels string // label names joined by \xff
	desc   *prometheus.Desc
}

// scrape checks and converts the samples of the sources of one Collect.
type scrape struct {
	st       *sourceState
	ch       chan<- prometheus.Metric
	families map[string]*family
	seen     map[string]bool // name and label values of each series sent
	n        int             // samples of the current source
}

// collectSources runs every registered source once.
func (c *Collector) collectSources(ch chan<- prometheus.Metric) {
	s := &c.src
	s.mu.Lock()
	srcs := append([]source(nil), s.sources...)
	s.mu.Unlock()
	sc := &scrape{st: s, ch: ch, families: map[string]*family{}, seen: map[string]bool{}}
	for _, src := range srcs {
		sc.run(src.fn)
	}
	ch <- prometheus.MustNewConstMetric(sourcesDesc, prometheus.GaugeValue, float64(len(srcs)))
	ch <- prometheus.MustNewConstMetric(sourcePanicsDesc, prometheus.CounterValue, float64(s.panics.Load()))
	ch <- prometheus.MustNewConstMetric(samplesDroppedDesc, prometheus.CounterValue, float64(s.dropped.Load()))
}

// run calls one source, recovering its panic. emit is serialized and
// refuses to work once the source returned, so a source that leaks it
// to another goroutine cannot corrupt this or a later scrape.
func (sc *scrape) run(fn Source) {
	sc.n = 0
	var mu sync.Mutex
	done := false
	defer func() {
		mu.Lock()
		done = true
		mu.Unlock()
		if recover() != nil {
			sc.st.panics.Add(1)
		}
	}()
	fn(func(smp Sample) {
		mu.Lock()
		defer mu.Unlock()
		if done {
			sc.st.dropped.Add(1)
			return
		}
		sc.emit(smp)
	})
}

// emit sends smp when it passes the checks, else counts it dropped.
func (sc *scrape) emit(smp Sample) {
	sc.n++
	m, err := sc.metric(smp)
	if err != nil {
		sc.st.dropped.Add(1)
		return
	}
	sc.ch <- m
}

// metric validates smp against the rules of Sample and the budgets.
func (sc *scrape) metric(smp Sample) (prometheus.Metric, error) {
	if sc.n > MaxSamples {
		return nil, errors.New("over budget")
	}
	if !strings.HasPrefix(smp.Name, "notp_") || reserved(smp.Name) || !legacyName(smp.Name) || len(smp.Labels) > MaxLabels || smp.Kind > Histogram ||
		(smp.Kind == Histogram) != (smp.Histogram != nil) {
		return nil, errors.New("bad sample")
	}
	names := make([]string, len(smp.Labels))
	values := make([]string, len(smp.Labels))
	for i, l := range smp.Labels {
		if len(l.Value) > MaxLabelValueLen {
			return nil, errors.New("label value too long")
		}
		if !legacyName(l.Name) || strings.HasPrefix(l.Name, "__") {
			return nil, errors.New("bad label name")
		}
		names[i], values[i] = l.Name, l.Value
	}
	f, err := sc.family(smp, names)
	if err != nil {
		return nil, err
	}
	key := smp.Name + "\xff" + strings.Join(values, "\xff")
	if sc.seen[key] {
		return nil, errors.New("duplicate series")
	}
	var m prometheus.Metric
	switch smp.Kind {
	case Counter:
		m, err = prometheus.NewConstMetric(f.desc, prometheus.CounterValue, smp.Value, values...)
	case Gauge:
		m, err = prometheus.NewConstMetric(f.desc, prometheus.GaugeValue, smp.Value, values...)
	default:
		m, err = histogram(f.desc, smp.Histogram, values)
	}
	if err == nil {
		sc.seen[key] = true
	}
	return m, err
}

// ownPrefixes are the series the Collector reports itself: a source's
// sample of one of them would clash with it in the scrape.
var ownPrefixes = []string{"notp_kernel_", "notp_gossip_", "notp_memberlist_", "notp_genserver_", "notp_metrics_"}

func reserved(name string) bool {
	for _, p := range ownPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// legacyName reports whether s is a series or label name every scraper
// reads unquoted: [a-zA-Z_][a-zA-Z0-9_]* (the client would accept any
// UTF-8, which older scrapers and PromQL without quoting do not).
func legacyName(s string) bool {
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return s != ""
}

// family returns the descriptor of smp's name, made by its first sample;
// a later sample must agree with it.
func (sc *scrape) family(smp Sample, names []string) (*family, error) {
	joined := strings.Join(names, "\xff")
	if f, ok := sc.families[smp.Name]; ok {
		if f.help != smp.Help || f.kind != smp.Kind || f.labels != joined {
			return nil, errors.New("inconsistent family")
		}
		return f, nil
	}
	// A bad name or label name makes a descriptor that every
	// NewConstMetric of it refuses.
	d := prometheus.NewDesc(smp.Name, smp.Help, names, nil)
	f := &family{help: smp.Help, kind: smp.Kind, labels: joined, desc: d}
	sc.families[smp.Name] = f
	return f, nil
}

// histogram converts a latency histogram snapshot, checking its shape:
// cumulative counts per upper bound, bounds and sum in seconds. Both the
// kernel's call histogram and sources' Histogram samples go through it.
func histogram(d *prometheus.Desc, h *kernel.Histogram, values []string) (prometheus.Metric, error) {
	if len(h.Counts) != len(h.Bounds)+1 || len(h.Bounds) > 64 {
		return nil, errors.New("bad histogram")
	}
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, b := range h.Bounds {
		cum += h.Counts[i]
		buckets[b.Seconds()] = cum
	}
	return prometheus.NewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets, values...)
}

// LatencyHistogram is a lock-free latency histogram over
// [kernel.CallLatencyBounds] (25 µs to 30 s), the one the kernel keeps of
// its calls: Observe is a short scan and two atomic adds, so callers on
// many goroutines do not serialize on a lock. Its zero value is ready to
// use; Snapshot gives the value a Histogram [Sample] carries.
type LatencyHistogram struct {
	h latency.Histogram
}

// Observe records one duration.
func (h *LatencyHistogram) Observe(d time.Duration) { h.h.Observe(d) }

// Snapshot reads the counts one by one: under concurrent observations
// Count and Sum may disagree by the observations made meanwhile.
func (h *LatencyHistogram) Snapshot() kernel.Histogram {
	counts, n, sum := h.h.Read()
	return kernel.Histogram{Bounds: kernel.CallLatencyBounds(), Counts: counts, Count: n, Sum: sum}
}
