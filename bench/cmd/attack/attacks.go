package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/internal/wire"
	"github.com/notp-go/notp/kernel"
)

// attacker is the node identity the raw attacks announce in their hellos.
func attacker(role string) notp.Node {
	return notp.Node{ID: fmt.Sprintf("attacker-%s-%d", role, os.Getpid()), Host: "127.0.0.1", Port: 1}
}

// deadlineOf is ctx's deadline, or now+d when it has none.
func deadlineOf(ctx context.Context, d time.Duration) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(d)
}

// junk returns n pseudo-random bytes (deterministic: the runs compare).
func junk(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// connResult is how one attacking connection ended.
type connResult struct {
	sent    int64
	err     error
	elapsed time.Duration
}

// memberlistJunk opens connections with the memberlist protocol byte and
// sends junk as fast as the node takes it: nothing but the protocol byte
// is checked before the stream reaches memberlist.
func memberlistJunk(ctx context.Context, e *env) (string, error) {
	addr := e.node.node.Addr()
	if err := checkLoopback(addr); err != nil {
		return "", err
	}
	buf := junk(64 << 10)
	res := make([]connResult, e.cfg.junkConns)
	var wg sync.WaitGroup
	for i := range res {
		wg.Go(func() { res[i] = sendJunk(ctx, addr, buf, e.cfg.junkBytes) })
	}
	wg.Wait()
	var sent int64
	cut, stalled, full := 0, 0, 0
	var lastCut time.Duration
	for _, r := range res {
		sent += r.sent
		var ne net.Error
		switch {
		case r.err == nil:
			full++
		case errors.As(r.err, &ne) && ne.Timeout():
			stalled++
		default:
			cut++
			lastCut = max(lastCut, r.elapsed)
		}
	}
	return fmt.Sprintf("%d conns × %.2f MB offered: %.1f MB written; %d took it all, %d cut by the node (last after %v), %d stalled until the attack's end",
		len(res), float64(e.cfg.junkBytes)/(1<<20), float64(sent)/(1<<20), full, cut, lastCut.Round(time.Millisecond), stalled), nil
}

// sendJunk writes limit bytes of buf (repeated) after the memberlist
// protocol byte, until done, an error or ctx's deadline.
func sendJunk(ctx context.Context, addr string, buf []byte, limit int64) connResult {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, handshakeTimeout)
	if err != nil {
		return connResult{err: err}
	}
	defer c.Close()
	c.SetWriteDeadline(deadlineOf(ctx, handshakeTimeout))
	if _, err := c.Write([]byte{gossip.MemberlistProto}); err != nil {
		return connResult{err: err, elapsed: time.Since(start)}
	}
	var sent int64
	for sent < limit {
		n, err := c.Write(buf[:min(int64(len(buf)), limit-sent)])
		sent += int64(n)
		if err != nil {
			return connResult{sent: sent, err: err, elapsed: time.Since(start)}
		}
	}
	return connResult{sent: sent, elapsed: time.Since(start)}
}

// idleConns opens many connections that send nothing, holds them, then
// lets go and times how long the node takes to give the descriptors back.
func idleConns(ctx context.Context, e *env) (string, error) {
	addr := e.node.node.Addr()
	if err := checkLoopback(addr); err != nil {
		return "", err
	}
	start := time.Now()
	var mu sync.Mutex
	var closedBy []time.Duration // when the node closed a connection
	var conns []net.Conn
	var wg sync.WaitGroup
	dialErrs := 0
	var firstErr error
	for range e.cfg.idleConns {
		if ctx.Err() != nil {
			break
		}
		c, err := net.DialTimeout("tcp", addr, handshakeTimeout)
		if err != nil {
			dialErrs++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		conns = append(conns, c)
		wg.Go(func() {
			var b [1]byte
			_, err := c.Read(b[:]) // returns when either side closes
			if !errors.Is(err, net.ErrClosed) {
				mu.Lock()
				closedBy = append(closedBy, time.Since(start))
				mu.Unlock()
			}
		})
	}
	opened := time.Since(start)
	hold := time.NewTimer(e.cfg.idleHold)
	select {
	case <-hold.C:
	case <-ctx.Done():
		hold.Stop()
	}
	mu.Lock()
	byNode := append([]time.Duration(nil), closedBy...)
	mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	freed := waitFDs(e.node.pid(), e.base.fds+2, 10*time.Second)
	notes := fmt.Sprintf("%d connected in %v", len(conns), opened.Round(time.Millisecond))
	if dialErrs > 0 {
		notes += fmt.Sprintf(" (%d dials failed: %v)", dialErrs, firstErr)
	}
	sort.Slice(byNode, func(i, j int) bool { return byNode[i] < byNode[j] })
	if len(byNode) > 0 {
		notes += fmt.Sprintf("; node closed %d within %v (first after %v, last after %v)", len(byNode), e.cfg.idleHold,
			byNode[0].Round(time.Millisecond), byNode[len(byNode)-1].Round(time.Millisecond))
	} else {
		notes += fmt.Sprintf("; node closed none within %v", e.cfg.idleHold)
	}
	if freed < 0 {
		return notes + fmt.Sprintf("; node fds still above base+2 10s after release (%d)", countFDs(e.node.pid())), nil
	}
	return notes + fmt.Sprintf("; node fds back to base+2 %v after release", freed.Round(time.Millisecond)), nil
}

// waitFDs polls pid's descriptor count until it is at most want and
// returns how long that took (-1: not within d).
func waitFDs(pid, want int, d time.Duration) time.Duration {
	start := time.Now()
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for time.Since(start) < d {
		if n := countFDs(pid); n >= 0 && n <= want {
			return time.Since(start)
		}
		<-t.C
	}
	return -1
}

// recordFrames is how many chunk frames go in one record (about 1 MB).
const recordFrames = 16

// partialStreams opens streams of chunked calls whose last chunk never
// comes, as a cookie holder: the node must hold each partial stream.
func partialStreams(ctx context.Context, e *env) (string, error) {
	s, err := authDial(e.node.node.Addr(), e.cfg.cookie, attacker("streams"))
	if err != nil {
		return "", err
	}
	closed := make(chan struct{})
	go func() { s.drain(); close(closed) }()
	defer func() { s.Close(); <-closed }() // the drain ends with the connection
	s.c.SetWriteDeadline(deadlineOf(ctx, handshakeTimeout))

	chunk := junk(kernel.ChunkSize)
	perStream := max(1, e.cfg.streamBytes/kernel.ChunkSize)
	start := time.Now()
	var sent int64
	var frames []*wire.Envelope
	for i := range e.cfg.streams {
		tag, id := fmt.Sprintf("partial-tag-%d", i), fmt.Sprintf("partial-%d", i)
		for range perStream {
			frames = append(frames, &wire.Envelope{Kind: wire.KindMsg, ID: "echo", Tag: tag,
				Stream: &wire.Stream{ID: id}, Data: chunk})
			if len(frames) == recordFrames {
				if err := s.sendRecord(frames...); err != nil {
					return sendFailed(e, sent, start, closed, err)
				}
				sent += int64(len(frames) * len(chunk))
				frames = frames[:0]
			}
		}
	}
	if len(frames) > 0 {
		if err := s.sendRecord(frames...); err != nil {
			return sendFailed(e, sent, start, closed, err)
		}
		sent += int64(len(frames) * len(chunk))
	}
	notes := streamNotes(e, sent, start, closed)
	hold(ctx, e.cfg.hold, closed)
	select {
	case <-closed:
		notes += "; then the node closed the connection"
	default:
		notes += fmt.Sprintf("; held %v, connection still open", e.cfg.hold)
	}
	return notes, nil
}

// sendFailed reports a write that failed: the node closing the
// connection (its defence against the attack) is a result, not an error.
func sendFailed(e *env, sent int64, start time.Time, closed chan struct{}, err error) (string, error) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-closed:
		return streamNotes(e, sent, start, closed), nil
	case <-t.C:
		return streamNotes(e, sent, start, closed), err
	}
}

func streamNotes(e *env, sent int64, start time.Time, closed chan struct{}) string {
	n := fmt.Sprintf("%d streams × %.2f MB without their last chunk: %.1f MB sent in %v",
		e.cfg.streams, float64(e.cfg.streamBytes)/(1<<20), float64(sent)/(1<<20), time.Since(start).Round(time.Millisecond))
	select {
	case <-closed:
		n += " (node closed the connection)"
	default:
	}
	return n
}

// hold waits for d, the end of ctx or closed.
func hold(ctx context.Context, d time.Duration, closed <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-closed:
	}
}

// encodeGenserverRequest is a genserver call's payload: the msgpack map
// {"event": str, "data": bin}.
func encodeGenserverRequest(event string, data []byte) []byte {
	b := []byte{0x82}
	b = wire.AppendStr(b, "event")
	b = wire.AppendStr(b, event)
	b = wire.AppendStr(b, "data")
	return wire.AppendBin(b, data)
}

// unreadReplies sends echo calls as a cookie holder and never reads the
// replies: they pile up wherever the node keeps unsent bytes.
func unreadReplies(ctx context.Context, e *env) (string, error) {
	s, err := authDial(e.node.node.Addr(), e.cfg.cookie, attacker("flood"))
	if err != nil {
		return "", err
	}
	defer s.Close()
	s.c.SetWriteDeadline(deadlineOf(ctx, handshakeTimeout))
	// The window of our own receive buffer stays as small as the kernel
	// allows, so the node's replies back up in the node, not in our socket.
	if tc, ok := s.c.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10)
	}
	payload := encodeGenserverRequest("echo", junk(e.cfg.floodCall))
	start := time.Now()
	var sent int64
	calls := 0
	frames := make([]*wire.Envelope, 0, recordFrames)
	for sent < e.cfg.floodBytes {
		frames = frames[:0]
		for range recordFrames {
			frames = append(frames, &wire.Envelope{Kind: wire.KindMsg, ID: "echo", Tag: fmt.Sprintf("flood-%d", calls), Data: payload})
			calls++
		}
		if err := s.sendRecord(frames...); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Sprintf("%.1f MB of %d echo calls (%d B each) sent before the node stopped reading (%v in); replies never read",
					float64(sent)/(1<<20), calls-len(frames), e.cfg.floodCall, time.Since(start).Round(time.Millisecond)), nil
			}
			return fmt.Sprintf("%.1f MB of echo calls sent, then the node closed the connection after %v: %v",
				float64(sent)/(1<<20), time.Since(start).Round(time.Millisecond), err), nil
		}
		sent += int64(len(frames) * len(payload))
	}
	elapsed := time.Since(start)
	hold(ctx, e.cfg.hold, nil)
	return fmt.Sprintf("%.1f MB of %d echo calls (%d B each) sent in %v; replies never read, connection held %v more",
		float64(sent)/(1<<20), calls, e.cfg.floodCall, elapsed.Round(time.Millisecond), e.cfg.hold), nil
}

// nilEntries calls the gossip handler with a ring message whose entries
// are nil values: each costs one byte on the wire and a whole entry once
// decoded. It is sent as a call so that the node's verdict comes back.
func nilEntries(ctx context.Context, e *env) (string, error) {
	k, err := newClient(ctx, "attacker-nil", e.cfg.cookie, e.node.node)
	if err != nil {
		return "", err
	}
	defer k.Close()
	msg := nilEntriesMessage(e.cfg.nilEntries, e.cfg.nilMsgBytes)
	start := time.Now()
	_, err = k.k.Call(ctx, e.node.node, "gossip/ring", msg)
	took := time.Since(start).Round(time.Millisecond)
	notes := fmt.Sprintf("%d nil entries in a %.1f MB message", e.cfg.nilEntries, float64(len(msg))/(1<<20))
	var re *kernel.RemoteError
	switch {
	case errors.As(err, &re):
		return notes + fmt.Sprintf("; node answered %s after %v", re.Code, took), nil
	case err != nil:
		return notes + fmt.Sprintf("; no answer after %v: %v", took, err), nil
	}
	return notes + fmt.Sprintf("; node ACCEPTED it after %v", took), nil
}

// bigRings casts two valid ring updates of many entries each (distinct
// node IDs), then checks that the node's own ring operations still work
// and that its flush file still loads after a restart. Every fake member's
// address is a sink of ours on 127.0.0.1, so the node's attempts to reach
// them are counted and touch nothing else on the machine.
func bigRings(ctx context.Context, e *env) (string, error) {
	sk, err := newSink()
	if err != nil {
		return "", err
	}
	defer sk.Close()
	k, err := newClient(ctx, "attacker-ring", e.cfg.cookie, e.node.node)
	if err != nil {
		return "", err
	}
	defer k.Close()
	if err := k.k.WaitConnected(ctx, e.node.node.ID); err != nil {
		return "", err
	}
	n := e.cfg.ringEntries
	var size int
	for i, prefix := range []string{"ring-a", "ring-b"} {
		msg := ringMessage(fmt.Sprintf("attacker-writer-%d", i), prefix, n, sk.port)
		size = len(msg)
		if err := k.k.Cast(e.node.node, "gossip/ring", msg); err != nil {
			return "", fmt.Errorf("cast %d: %w", i+1, err)
		}
	}
	notes := fmt.Sprintf("2 casts of %d entries (%.1f MB each)", n, float64(size)/(1<<20))
	last := [2]string{fmt.Sprintf("ring-a-%06d", n-1), fmt.Sprintf("ring-b-%06d", n-1)}
	has := [2]bool{}
	// Poll while the attack's time allows, leaving room for the insert.
	pollUntil(ctx, time.Until(deadlineOf(ctx, 5*time.Second))-legitTimeout-500*time.Millisecond, func() bool {
		for i, id := range last {
			has[i] = hasNode(ctx, e.legit, id)
		}
		return has[0] && has[1]
	})
	notes += fmt.Sprintf("; ring holds 1st: %v, 2nd: %v", has[0], has[1])
	notes += "; insert: " + insertProbe(ctx, e.legit)
	tcp, udp := sk.counts()
	notes += fmt.Sprintf("; node reached for the fake members %d times over TCP, %d UDP packets", tcp, udp)
	// Measure the node a little longer, as after every attack; then the
	// restart check runs after the attack's measurement, with bounds of
	// its own (stop 10 s, answer 15 s).
	hold(ctx, e.cfg.after, nil)
	stopErr, readyErr := e.restart(context.WithoutCancel(ctx))
	if stopErr != nil {
		notes += fmt.Sprintf("; stop: %v", stopErr)
	}
	notes += "; " + flushSummary(e.spec.flush)
	switch {
	case readyErr == nil:
		return notes + "; restarted node answers", nil
	case e.node.alive():
		return notes + fmt.Sprintf("; restarted node runs but %v", readyErr), nil
	}
	return notes + fmt.Sprintf("; restart FAILED: %v", readyErr), nil
}

// sink is a TCP listener that accepts and closes at once and a UDP socket
// on the same 127.0.0.1 port, counting what arrives.
type sink struct {
	port int
	ln   net.Listener
	pc   net.PacketConn
	tcp  atomic.Int64
	udp  atomic.Int64
	wg   sync.WaitGroup
}

func newSink() (*sink, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("attack: sink: %w", err)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("attack: sink: %w", err)
	}
	s := &sink{port: port, ln: ln, pc: pc}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.tcp.Add(1)
			c.Close()
		}
	})
	s.wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			s.udp.Add(1)
		}
	})
	return s, nil
}

func (s *sink) counts() (tcp, udp int64) { return s.tcp.Load(), s.udp.Load() }

// Close stops the sink and waits for its goroutines.
func (s *sink) Close() error {
	s.ln.Close()
	s.pc.Close()
	s.wg.Wait()
	return nil
}

// flushSummary describes the flush file after the node stopped: its size
// and how many of the attack's entries it holds (their IDs counted in the
// bytes).
func flushSummary(path string) string {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "no flush file written"
	}
	if err != nil {
		return fmt.Sprintf("flush file: %v", err)
	}
	return fmt.Sprintf("flush file after stop: %d KB, %d + %d attack entries", len(b)>>10,
		bytes.Count(b, []byte("ring-a-")), bytes.Count(b, []byte("ring-b-")))
}

// pollUntil calls f every 100 ms until it returns true, for at most d.
func pollUntil(ctx context.Context, d time.Duration, f func() bool) bool {
	end := time.Now().Add(d)
	for {
		if f() {
			return true
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
