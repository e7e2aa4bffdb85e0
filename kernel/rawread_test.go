//go:build unix

package kernel

import (
	"net"
	"testing"
	"time"
)

// dryReadsOfSparseTraffic reads n one-byte records through a rawReader of
// the given polling mode, each written once the reader found its socket
// dry and pollWindowMax and then some later (sparse traffic), and returns
// how many of the reader's read(2) calls found nothing, and its polls.
func dryReadsOfSparseTraffic(t *testing.T, busyPoll time.Duration, n int) (dry, polls uint64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	w, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	st := &stats{}
	r := newRawReader(rc, newPoller(busyPoll, 1, st))
	dried := make(chan struct{}, 1)
	r.onDry = func() {
		select {
		case dried <- struct{}{}:
		default:
		}
	}
	done := make(chan error, 1)
	go func() {
		for range n {
			<-dried
			time.Sleep(2 * pollWindowMax) // the gap that makes the traffic sparse
			if _, err := w.Write([]byte{1}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	buf := make([]byte, 1)
	for i := range n {
		if _, err := r.Read(buf); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return r.dryReads, st.pollHits.Load() + st.pollMisses.Load()
}

// An adaptive reader on sparse traffic makes the read(2) calls of one that
// never polls: one that finds the socket dry, a wait in the runtime's
// poller and one that reads, so that sparse traffic costs what it costs
// with polling off. (It once tried a read first and then read again before
// waiting: two dry reads per record.)
func TestAdaptiveSparseReadsAsPollingOff(t *testing.T) {
	skipNoRaw(t)
	const n = 40
	off, offPolls := dryReadsOfSparseTraffic(t, BusyPollOff, n)
	ad, adPolls := dryReadsOfSparseTraffic(t, 0, n)
	t.Logf("dry reads for %d sparse records: polling off %d, adaptive %d", n, off, ad)
	if offPolls != 0 || adPolls != 0 {
		t.Fatalf("polls on sparse traffic: off %d, adaptive %d; want none", offPolls, adPolls)
	}
	if off < n || ad > off+n/4 {
		t.Fatalf("dry reads for %d sparse records: polling off %d, adaptive %d; want about one per record in both", n, off, ad)
	}
}
