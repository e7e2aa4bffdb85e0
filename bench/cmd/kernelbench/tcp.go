package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The "tcp" system is the baseline: plain loopback TCP with the smallest framing
// that supports the same workload (multiplexed calls, casts, stats), no
// authentication and no serialisation. Its latency is what the network stack
// and two goroutine hand-offs cost on this machine.
func init() {
	registry["tcp"] = system{
		config: "raw TCP baseline (no auth, no codec)",
		serve:  tcpServe,
		dial:   tcpDial,
	}
}

// Frame: kind (1 byte), id (8 bytes), length (4 bytes), payload.
const (
	tcpCall  byte = 'c'
	tcpCast  byte = 's'
	tcpStats byte = 'q'
	tcpReply byte = 'r'

	tcpHeader   = 13
	tcpMaxFrame = 1 << 20
)

// frameWriter batches frames written by many goroutines: the writer that
// finds no flush in progress writes the buffer out, later ones append to it
// meanwhile.
type frameWriter struct {
	mu       sync.Mutex
	buf      []byte
	flushing bool
	err      error
	w        io.Writer
}

// write appends a frame and, unless lazy is set and less than 64 KiB is
// buffered, writes the buffer out. Lazy frames (casts) therefore wait for the
// next eager frame or a full buffer: the ideal batching a real transport can
// only approach.
func (fw *frameWriter) write(kind byte, id uint64, payload []byte, lazy bool) error {
	fw.mu.Lock()
	if fw.err != nil {
		err := fw.err
		fw.mu.Unlock()
		return err
	}
	var h [tcpHeader]byte
	h[0] = kind
	binary.BigEndian.PutUint64(h[1:9], id)
	binary.BigEndian.PutUint32(h[9:], uint32(len(payload)))
	fw.buf = append(fw.buf, h[:]...)
	fw.buf = append(fw.buf, payload...)
	if fw.flushing || (lazy && len(fw.buf) < 64<<10) {
		fw.mu.Unlock()
		return nil
	}
	fw.flushing = true
	var spare []byte
	for len(fw.buf) > 0 && fw.err == nil {
		out := fw.buf
		fw.buf = spare[:0]
		fw.mu.Unlock()
		_, err := fw.w.Write(out)
		fw.mu.Lock()
		spare = out
		if err != nil {
			fw.err = err
		}
	}
	fw.flushing = false
	err := fw.err
	fw.mu.Unlock()
	return err
}

func readFrame(r *bufio.Reader) (kind byte, id uint64, payload []byte, err error) {
	var h [tcpHeader]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[9:])
	if n > tcpMaxFrame {
		return 0, 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(r, payload); err != nil {
		return 0, 0, nil, err
	}
	return h[0], binary.BigEndian.Uint64(h[1:9]), payload, nil
}

func tcpServe(_ context.Context, _ *secrets) (string, func() error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var (
		count atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				r := bufio.NewReaderSize(c, 64<<10)
				fw := &frameWriter{w: c}
				for {
					kind, id, p, err := readFrame(r)
					if err != nil {
						return
					}
					switch kind {
					case tcpCall:
						err = fw.write(tcpReply, id, p, false)
					case tcpCast:
						count.Add(1)
					case tcpStats:
						var b [16]byte
						binary.BigEndian.PutUint64(b[:8], uint64(count.Load()))
						binary.BigEndian.PutUint64(b[8:], uint64(time.Now().UnixNano()))
						err = fw.write(tcpReply, id, b[:], false)
					default:
						return
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	stop := func() error {
		err := ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		return err
	}
	return ln.Addr().String(), stop, nil
}

type tcpClient struct {
	conn    net.Conn
	fw      *frameWriter
	nextID  atomic.Uint64
	mu      sync.Mutex
	pending map[uint64]chan []byte
	err     error
	done    chan struct{}
}

func tcpDial(ctx context.Context, addr string, _ *secrets) (client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &tcpClient{conn: conn, fw: &frameWriter{w: conn}, pending: map[uint64]chan []byte{}, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

func (c *tcpClient) readLoop() {
	defer close(c.done)
	r := bufio.NewReaderSize(c.conn, 64<<10)
	for {
		kind, id, p, err := readFrame(r)
		if err == nil && kind != tcpReply {
			err = fmt.Errorf("unexpected frame kind %q", kind)
		}
		c.mu.Lock()
		if err != nil {
			c.err = err
			for _, ch := range c.pending {
				close(ch)
			}
			c.pending = nil
			c.mu.Unlock()
			return
		}
		ch := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- p
		}
	}
}

func (c *tcpClient) roundTrip(ctx context.Context, kind byte, payload []byte) ([]byte, error) {
	id := c.nextID.Add(1)
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.pending == nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.pending[id] = ch
	c.mu.Unlock()
	if err := c.fw.write(kind, id, payload, false); err != nil {
		return nil, err
	}
	select {
	case p, ok := <-ch:
		if !ok {
			return nil, errors.New("connection closed")
		}
		return p, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *tcpClient) Call(ctx context.Context, payload []byte) error {
	p, err := c.roundTrip(ctx, tcpCall, payload)
	if err != nil {
		return err
	}
	if !bytes.Equal(p, payload) {
		return errors.New("echo differs from the request")
	}
	return nil
}

func (c *tcpClient) Cast(payload []byte) error {
	return c.fw.write(tcpCast, 0, payload, true)
}

func (c *tcpClient) CastStats(ctx context.Context) (int64, int64, error) {
	p, err := c.roundTrip(ctx, tcpStats, nil)
	if err != nil {
		return 0, 0, err
	}
	if len(p) != 16 {
		return 0, 0, fmt.Errorf("stats reply of %d bytes, want 16", len(p))
	}
	return int64(binary.BigEndian.Uint64(p[:8])), int64(binary.BigEndian.Uint64(p[8:])), nil
}

func (c *tcpClient) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}
