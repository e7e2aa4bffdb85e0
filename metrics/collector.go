package metrics

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
)

// MaxServers bounds the actors one Collector reports, and so the number of
// "actor" label values a scrape carries: a program that starts actors per
// request or per key would otherwise grow every scrape without bound.
const MaxServers = 64

// Errors returned by [Collector.Watch].
var (
	// ErrTooManyServers: the Collector already watches MaxServers actors.
	ErrTooManyServers = errors.New("metrics: too many servers watched")
	// ErrDuplicateServer: the Collector already watches a server of that
	// name (two would report the same series).
	ErrDuplicateServer = errors.New("metrics: server already watched")
)

// Collector is a prometheus.Collector that reads a node's counters when it
// is scraped: the kernel's [kernel.Stats], the gossip ring's [gossip.Stats]
// and members, memberlist's transport counters and the [genserver.Stats] of
// the actors it watches. It keeps no state of its own and starts no
// goroutine; each Collect costs one snapshot of each source. Its methods
// are safe for concurrent use.
type Collector struct {
	k    *kernel.Kernel
	ring *gossip.Ring

	mu      sync.Mutex
	servers []*genserver.Server

	src sourceState // sources of other packages (Register)
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector of the kernel k and the ring (nil: a node
// without gossip reports only its kernel and actors). k must not be nil.
func New(k *kernel.Kernel, ring *gossip.Ring) *Collector {
	if k == nil {
		panic("metrics: New with a nil kernel")
	}
	return &Collector{k: k, ring: ring}
}

// Watch adds the actor s to the series the Collector reports, labelled
// actor=s.Name(). It fails with ErrDuplicateServer when a server of the
// same name is watched and with ErrTooManyServers past MaxServers. Stopped
// servers keep reporting their last counters until Unwatch.
func (c *Collector) Watch(s *genserver.Server) error {
	if s == nil {
		return errors.New("metrics: Watch of a nil server")
	}
	name := s.Name()
	c.mu.Lock()
	defer c.mu.Unlock()
	if slices.ContainsFunc(c.servers, func(o *genserver.Server) bool { return o == s || o.Name() == name }) {
		return fmt.Errorf("%w: %q", ErrDuplicateServer, name)
	}
	if len(c.servers) >= MaxServers {
		return fmt.Errorf("%w: %q would be the %d-th (limit %d)", ErrTooManyServers, name, len(c.servers)+1, MaxServers)
	}
	c.servers = append(c.servers, s)
	return nil
}

// Unwatch removes s from the reported actors; unknown servers are ignored.
func (c *Collector) Unwatch(s *genserver.Server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.servers = slices.DeleteFunc(c.servers, func(o *genserver.Server) bool { return o == s })
}

// Describe sends the descriptors of every series the Collector reports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect sends the current value of every series.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ks := c.k.Stats()
	emit(ch, kernelMetrics, &ks)
	ch <- callDuration(&ks.CallLatency)
	if c.ring != nil {
		gs := c.ring.Stats()
		emit(ch, gossipMetrics, &gs)
		c.collectMembers(ch)
		c.collectRing(ch)
		ms := c.ring.TransportStats()
		emit(ch, memberlistMetrics, &ms)
	}
	c.collectServers(ch)
	c.collectSources(ch)
}

// collectMembers reports the ring's members by memberlist health, every
// health value included so that a state's series exists at 0.
func (c *Collector) collectMembers(ch chan<- prometheus.Metric) {
	var counts [gossip.HealthLeft + 1]int
	for _, m := range c.ring.Members() {
		if int(m.Health) < len(counts) {
			counts[m.Health]++
		}
	}
	for h, n := range counts {
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(n), gossip.Health(h).String())
	}
}

// collectRing reports the size of the ring's hash ring and its id and
// checksum (gossip.Ring.Checksum), from which convergence shows.
func (c *Collector) collectRing(ch chan<- prometheus.Metric) {
	v := c.ring.View()
	ch <- prometheus.MustNewConstMetric(ringNodesDesc, prometheus.GaugeValue, float64(v.NumberNodes()))
	ch <- prometheus.MustNewConstMetric(ringTokensDesc, prometheus.GaugeValue, float64(v.Size()))
	ch <- prometheus.MustNewConstMetric(ringInfoDesc, prometheus.GaugeValue, 1,
		c.ring.RingID(), fmt.Sprintf("%016x", c.ring.Checksum()))
}

// collectServers reports each watched actor's counters. A server renamed
// after Watch to the name of another is reported once, under its first
// occurrence, so a scrape never holds two series of one name.
func (c *Collector) collectServers(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	servers := slices.Clone(c.servers)
	c.mu.Unlock()
	seen := make(map[string]bool, len(servers))
	for _, s := range servers {
		name := s.Name()
		if seen[name] {
			continue
		}
		seen[name] = true
		st := s.Stats()
		for _, m := range serverMetrics {
			ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.val(&st), append([]string{name}, m.labels...)...)
		}
	}
}

// emit sends one constant metric per entry of ms, read from s.
func emit[S any](ch chan<- prometheus.Metric, ms []metric[S], s *S) {
	for _, m := range ms {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.val(s), m.labels...)
	}
}

// callDuration is the kernel's call-latency histogram as a Prometheus
// histogram: cumulative counts per upper bound, in seconds. The kernel's
// snapshot always has the shape histogram checks; were it not to, the
// scrape would report the error rather than a wrong histogram.
func callDuration(h *kernel.Histogram) prometheus.Metric {
	m, err := histogram(kernelCallDuration, h, nil)
	if err != nil {
		return prometheus.NewInvalidMetric(kernelCallDuration, err)
	}
	return m
}
