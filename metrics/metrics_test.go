package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/metrics"
)

// newKernel starts a kernel "m" on loopback, closed at cleanup.
func newKernel(t *testing.T) *kernel.Kernel {
	t.Helper()
	return clustertest.StartKernel(t, kernel.Config{Node: notp.Node{ID: "m", Host: "127.0.0.1"}, Insecure: true})
}

func newServer(t *testing.T, k *kernel.Kernel, name string) *genserver.Server {
	t.Helper()
	s, err := genserver.New(k, genserver.Config{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// gather registers c in a pedantic registry, which checks that every
// collected series matches a described descriptor, and gathers it.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	return gatherIn(t, prometheus.NewPedanticRegistry(), c)
}

// gatherLoose gathers c in a registry without pedantic checks: the series
// of registered sources are not described in advance, as Register lets
// packages add them at run time.
func gatherLoose(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	return gatherIn(t, prometheus.NewRegistry(), c)
}

// gatherIn registers c in reg and gathers it, by family name.
func gatherIn(t *testing.T, reg *prometheus.Registry, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	if err := reg.Register(c); err != nil {
		t.Fatalf("Register: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// Watch reports at most MaxServers actors, one per name; Unwatch frees a
// slot, and each watched actor has its own series.
func TestWatchBounds(t *testing.T) {
	k := newKernel(t)
	c := metrics.New(k, nil)
	var first *genserver.Server
	for i := range metrics.MaxServers {
		s := newServer(t, k, fmt.Sprintf("a%d", i))
		if err := c.Watch(s); err != nil {
			t.Fatalf("Watch #%d: %v", i, err)
		}
		if i == 0 {
			first = s
		}
	}
	if err := c.Watch(newServer(t, k, "another")); !errors.Is(err, metrics.ErrTooManyServers) {
		t.Fatalf("Watch past the limit: %v, want ErrTooManyServers", err)
	}
	if err := c.Watch(first); !errors.Is(err, metrics.ErrDuplicateServer) {
		t.Fatalf("Watch twice: %v, want ErrDuplicateServer", err)
	}
	c.Unwatch(first)
	if err := c.Watch(newServer(t, k, "a1")); !errors.Is(err, metrics.ErrDuplicateServer) {
		t.Fatalf("Watch of a second server named a1: %v, want ErrDuplicateServer", err)
	}
	if err := c.Watch(newServer(t, k, "late")); err != nil {
		t.Fatalf("Watch after Unwatch: %v", err)
	}
	mfs := gather(t, c)
	if got := len(mfs["notp_genserver_handled_total"].GetMetric()); got != metrics.MaxServers {
		t.Fatalf("%d actors reported, want %d", got, metrics.MaxServers)
	}
	if _, ok := mfs["notp_gossip_members"]; ok {
		t.Fatal("gossip series reported without a ring")
	}
	if got := len(mfs["notp_kernel_rejected_total"].GetMetric()); got != 7 {
		t.Fatalf("%d rejection reasons, want 7", got)
	}
}

func listen(t *testing.T) *metrics.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(newKernel(t), nil))
	s, err := metrics.Listen("127.0.0.1:0", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}

// rawGet sends a GET with extra header bytes and returns the status code.
func rawGet(t *testing.T, addr, path string, extra int) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\nConnection: close\r\n\r\n", path, strings.Repeat("a", extra))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// The endpoint serves /metrics only, GET only, refuses oversized headers
// and stops listening on Close.
func TestServerServesOnlyMetrics(t *testing.T) {
	s := listen(t)
	addr := s.Addr().String()
	for _, tt := range []struct {
		path  string
		extra int
		want  int
	}{
		{"/metrics", 0, http.StatusOK},
		{"/", 0, http.StatusNotFound},
		{"/metrics/x", 0, http.StatusNotFound},
		{"/debug/pprof/", 0, http.StatusNotFound},
		{"/metrics", 2 * metrics.MaxHeaderBytes, http.StatusRequestHeaderFieldsTooLarge},
	} {
		if got := rawGet(t, addr, tt.path, tt.extra); got != tt.want {
			t.Errorf("GET %s with %d header bytes: %d, want %d", tt.path, tt.extra, got, tt.want)
		}
	}
	resp, err := http.Post("http://"+addr+metrics.Path, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after Stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("endpoint still accepts connections after Close")
	}
}

// At most MaxConns connections are served at once: idle ones that hold
// every slot delay a scrape until one of them closes.
func TestServerConnLimit(t *testing.T) {
	s := listen(t)
	addr := s.Addr().String()
	var idle []net.Conn
	for range metrics.MaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	client := &http.Client{Timeout: 500 * time.Millisecond}
	if resp, err := client.Get("http://" + addr + metrics.Path); err == nil {
		resp.Body.Close()
		t.Fatal("a scrape was served while MaxConns idle connections were open")
	}
	idle[0].Close()
	client.Timeout = 10 * time.Second
	resp, err := client.Get("http://" + addr + metrics.Path)
	if err != nil {
		t.Fatalf("scrape after a slot freed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape after a slot freed: %d", resp.StatusCode)
	}
}

func TestListenErrors(t *testing.T) {
	if _, err := metrics.Listen("127.0.0.1:0", nil, nil); err == nil {
		t.Fatal("Listen with a nil gatherer succeeded")
	}
	s := listen(t)
	_, err := metrics.Listen(s.Addr().String(), prometheus.NewRegistry(), nil)
	if err == nil || !strings.HasPrefix(err.Error(), "metrics: listen") {
		t.Fatalf("Listen on a used port: %v", err)
	}
}

// blockingCollector holds every Collect until release is closed, so a
// scrape stays in flight.
type blockingCollector struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingCollector) Describe(chan<- *prometheus.Desc) {}

func (b *blockingCollector) Collect(chan<- prometheus.Metric) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
}

// scrapeInFlight serves a registry whose collector blocks until the test
// ends and starts a scrape; it returns once the scrape reached the
// collector, with the server and the scrape's outcome.
func scrapeInFlight(t *testing.T) (*metrics.Server, <-chan error) {
	t.Helper()
	b := &blockingCollector{entered: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(func() { close(b.release) })
	reg := prometheus.NewRegistry()
	reg.MustRegister(b)
	s, err := metrics.Listen("127.0.0.1:0", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	scraped := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr().String() + metrics.Path)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		scraped <- err
	}()
	select {
	case <-b.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the scrape never reached the collector")
	}
	return s, scraped
}

// Stop waits for a scrape in flight until its ctx ends and says so, then
// cuts it.
func TestServerStopWaits(t *testing.T) {
	s, scraped := scrapeInFlight(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop with a scrape in flight = %v, want DeadlineExceeded", err)
	}
	select {
	case err := <-scraped:
		if err == nil {
			t.Fatal("the cut scrape succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scrape was not cut")
	}
}

// Close cuts a scrape in flight at once and returns nil.
func TestServerCloseIsImmediate(t *testing.T) {
	s, scraped := scrapeInFlight(t)
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the scrape in flight")
	}
	if err := <-scraped; err == nil {
		t.Fatal("the cut scrape succeeded")
	}
}

// The kernel's call and cast counters and its call-latency histogram are
// exported with Prometheus names and units: a scrape of a kernel that made
// calls has the calls in the histogram's count and cumulative buckets.
func TestKernelCallMetrics(t *testing.T) {
	k := newKernel(t)
	if err := k.Register("echo", kernel.HandlerFunc(func(m kernel.Message) { k.Reply(m.From, m.Data) })); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := k.Call(context.Background(), k.Self(), "echo", nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.Cast(k.Self(), "echo", nil); err != nil {
		t.Fatal(err)
	}
	mfs := gather(t, metrics.New(k, nil))
	value := func(name string, labels ...string) float64 {
		t.Helper()
		for _, m := range mfs[name].GetMetric() {
			if len(labels) == 0 || m.GetLabel()[0].GetValue() == labels[0] {
				return m.GetCounter().GetValue()
			}
		}
		t.Fatalf("no series %s %v", name, labels)
		return 0
	}
	if value("notp_kernel_calls_total") != 5 || value("notp_kernel_casts_total") != 1 ||
		value("notp_kernel_handled_total", "call") != 5 || value("notp_kernel_handled_total", "cast") != 1 {
		t.Fatalf("counters: %v", mfs["notp_kernel_handled_total"])
	}
	h := mfs["notp_kernel_call_duration_seconds"].GetMetric()[0].GetHistogram()
	bs := h.GetBucket()
	if h.GetSampleCount() != 5 || h.GetSampleSum() <= 0 || len(bs) != len(kernel.CallLatencyBounds()) ||
		bs[len(bs)-1].GetCumulativeCount() != 5 || bs[0].GetUpperBound() != 25e-6 {
		t.Fatalf("histogram %v", h)
	}
	for i := 1; i < len(bs); i++ {
		if bs[i].GetCumulativeCount() < bs[i-1].GetCumulativeCount() || bs[i].GetUpperBound() <= bs[i-1].GetUpperBound() {
			t.Fatalf("buckets not cumulative and ascending: %v", bs)
		}
	}
}
