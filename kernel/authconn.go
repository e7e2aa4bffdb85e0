package kernel

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/notp-go/notp/internal/lifecycle"
)

// Authenticated streams let another protocol sharing the kernel's port
// (Raft, for example) get byte streams that only holders of the cookie can
// open, with every byte after the handshake sealed. The layout, after the
// protocol byte (and inside TLS when the kernel runs TLS):
//
//	dialer → acceptor   hello: version(1) | flags(1) | nonce(32)
//	acceptor → dialer   hello: version(1) | flags(1) | nonce(32)
//	dialer → acceptor   proof P_D = HMAC-SHA256(K, "authconn proof dialer" || T)
//	acceptor → dialer   proof P_A = HMAC-SHA256(K, "authconn proof acceptor" || T)
//	records both ways   u32be n | AES-256-GCM(seal of the payload, n bytes)
//
// K is [Kernel.DeriveKey]("authconn v1") on the dialer (its primary
// cookie); the acceptor tries the key of every cookie in its [Keyring] and
// uses the one P_D was made with. T is proto || H_D || H_A,
// followed under TLS by 32 bytes of the session's exported keying
// material (label [authBindingLabel]), so a relay between two TLS sessions
// cannot forward proofs. The acceptor checks P_D before it sends anything
// derived from the cookie, so a dialer without the cookie receives nothing
// to test cookie guesses against. Record keys are HMAC-SHA256(K,
// "authconn key dialer->acceptor" || T) and the acceptor->dialer twin; the
// GCM nonce is the implicit per-direction record counter (4 zero bytes |
// u64be), so a replayed, reordered, dropped or altered record fails to
// open and ends the connection. A record holds at most [MaxAuthRecord]
// payload bytes.
//
// With an insecure kernel (no cookie) both hellos carry the insecure flag,
// no proofs are exchanged, and the streams are plain. Hellos whose
// insecure flags differ are refused on both sides. The version byte and
// the labels are append-only protocol constants.
const (
	authVersion            byte = 1
	authFlagInsecure       byte = 1
	authNonceSize               = 32
	authHelloSize               = 2 + authNonceSize
	authBindingLabel            = "EXPORTER-notp authconn v1 channel binding"
	authKeyLabel                = "authconn v1"
	authLabelProofD             = "authconn proof dialer"
	authLabelProofA             = "authconn proof acceptor"
	authLabelKeyD2A             = "authconn key dialer->acceptor"
	authLabelKeyA2D             = "authconn key acceptor->dialer"
	authHeaderSize              = 4
	authTagSize                 = 16
	authMaxHandshakes           = 16 // per listener, at once
	authAcceptQueue             = 16 // authenticated conns waiting for Accept
	authGCMNonceSize            = 12
	authMACSize                 = sha256.Size
	authHandshakeFallback       = DefaultHandshakeTimeout
	authListenerCloseError      = "kernel: authenticated listener closed"
)

// MaxAuthRecord is the largest payload of one sealed record of an
// authenticated stream; writes are split into records of at most this
// size, and a record declaring more is refused before anything is
// allocated for it.
const MaxAuthRecord = 64 << 10

// ErrAuthHandshake is wrapped by the errors of a failed authenticated
// stream handshake (wrong cookie, version or security mode, or a peer
// that said too little in time).
var ErrAuthHandshake = errors.New("kernel: authenticated stream handshake failed")

// ListenAuth is [Kernel.Listen] for authenticated streams: the returned
// listener's Accept yields connections whose dialer proved it holds the
// cluster cookie (see [Kernel.DialAuth]) and whose bytes are sealed. The
// handshakes run beside Accept, at most 16 at once, each bounded by
// Config.HandshakeTimeout; connections beyond that or failing the
// handshake are closed and counted as handshake failures in [Stats]. The
// listener is closed by its Close (which waits for its handshakes) or by
// the kernel's Close.
func (k *Kernel) ListenAuth(proto byte) (net.Listener, error) {
	ln, err := k.Listen(proto)
	if err != nil {
		return nil, err
	}
	al := &authListener{
		k:     k,
		proto: proto,
		ln:    ln,
		ch:    make(chan net.Conn, authAcceptQueue),
		done:  make(chan struct{}),
		sem:   make(chan struct{}, authMaxHandshakes),
	}
	al.wg.Add(1)
	go al.acceptLoop()
	return al, nil
}

// DialAuth is [Kernel.Dial] followed by the dialer's side of the
// authenticated stream handshake; the handshake is bounded by ctx and by
// Config.HandshakeTimeout. A peer with another cookie makes it fail with
// an error wrapping [ErrAuthHandshake].
func (k *Kernel) DialAuth(ctx context.Context, addr string, proto byte) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, k.handshakeTimeout())
	defer cancel()
	c, err := k.Dial(ctx, addr, proto)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	ac, err := k.authHandshake(c, proto, true)
	if !stop() {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("kernel: dial %s: %w", addr, err)
	}
	c.SetDeadline(time.Time{})
	return ac, nil
}

func (k *Kernel) handshakeTimeout() time.Duration {
	if k.cfg.HandshakeTimeout > 0 {
		return k.cfg.HandshakeTimeout
	}
	return authHandshakeFallback
}

// authHandshake runs one side of the handshake on c and returns the
// connection to use afterwards: c itself when insecure, else a sealed one.
func (k *Kernel) authHandshake(c net.Conn, proto byte, dialer bool) (net.Conn, error) {
	key := k.DeriveKey(authKeyLabel)
	mine := make([]byte, authHelloSize)
	mine[0] = authVersion
	if key == nil {
		mine[1] = authFlagInsecure
	}
	rand.Read(mine[2:])
	if dialer {
		if _, err := c.Write(mine); err != nil {
			return nil, fmt.Errorf("%w: write hello: %w", ErrAuthHandshake, err)
		}
	}
	theirs := make([]byte, authHelloSize)
	if _, err := io.ReadFull(c, theirs); err != nil {
		return nil, fmt.Errorf("%w: read hello: %w", ErrAuthHandshake, err)
	}
	if err := checkAuthHello(mine, theirs); err != nil {
		return nil, err
	}
	if !dialer {
		if _, err := c.Write(mine); err != nil {
			return nil, fmt.Errorf("%w: write hello: %w", ErrAuthHandshake, err)
		}
	}
	if key == nil {
		return c, nil
	}
	// The transcript starts with the protocol byte, so a stream's proofs
	// and keys are bound to the protocol it was opened for.
	t, err := transcript(c, authBindingLabel, []byte{proto}, dialer, mine, theirs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAuthHandshake, err)
	}
	if !dialer {
		// The acceptor checks the dialer's proof against every installed
		// cookie, so streams keep opening while a cluster rotates its
		// cookie and its nodes' primaries differ for a while.
		if key, err = authAcceptProof(c, k.keys.DeriveKeys(authKeyLabel), t); err != nil {
			return nil, err
		}
	} else if err := authProofs(c, key, t); err != nil {
		return nil, err
	}
	d2a, a2d := authMAC(key, authLabelKeyD2A, t), authMAC(key, authLabelKeyA2D, t)
	if dialer {
		return newSealedConn(c, d2a, a2d), nil
	}
	return newSealedConn(c, a2d, d2a), nil
}

// checkAuthHello checks the peer's hello against ours: same version, same
// security mode, and not our own nonce reflected back.
func checkAuthHello(mine, theirs []byte) error {
	if theirs[0] != authVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrAuthHandshake, theirs[0], authVersion)
	}
	if theirs[1]&^authFlagInsecure != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrAuthHandshake, theirs[1])
	}
	if theirs[1] != mine[1] {
		return fmt.Errorf("%w: one side is insecure (no cookie) and the other is not", ErrAuthHandshake)
	}
	if hmac.Equal(theirs[2:], mine[2:]) {
		return fmt.Errorf("%w: peer reflected our nonce", ErrAuthHandshake)
	}
	return nil
}

// authProofs is the dialer's side of the proofs: it proves first, then
// checks the acceptor's proof.
func authProofs(c net.Conn, key, t []byte) error {
	if _, err := c.Write(authMAC(key, authLabelProofD, t)); err != nil {
		return fmt.Errorf("%w: write proof: %w", ErrAuthHandshake, err)
	}
	got := make([]byte, authMACSize)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("%w: read proof: %w", ErrAuthHandshake, err)
	}
	if !hmac.Equal(got, authMAC(key, authLabelProofA, t)) {
		return fmt.Errorf("%w: wrong cookie (bad proof): %w", ErrAuthHandshake, ErrBadSignature)
	}
	return nil
}

// authAcceptProof reads the dialer's proof, finds the installed key (of
// keys, the primary first) it was made with, and answers with the
// acceptor's proof under that key, which it returns to key the records.
// Nothing is sent unless a key matched.
func authAcceptProof(c net.Conn, keys [][]byte, t []byte) ([]byte, error) {
	got := make([]byte, authMACSize)
	if _, err := io.ReadFull(c, got); err != nil {
		return nil, fmt.Errorf("%w: read proof: %w", ErrAuthHandshake, err)
	}
	for _, key := range keys {
		if hmac.Equal(got, authMAC(key, authLabelProofD, t)) {
			if _, err := c.Write(authMAC(key, authLabelProofA, t)); err != nil {
				return nil, fmt.Errorf("%w: write proof: %w", ErrAuthHandshake, err)
			}
			return key, nil
		}
	}
	return nil, fmt.Errorf("%w: wrong cookie (bad proof): %w", ErrAuthHandshake, ErrBadSignature)
}

// authMAC is HMAC-SHA256(key, label || data).
func authMAC(key []byte, label string, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write(data)
	return m.Sum(nil)
}

// authListener runs the acceptor's handshakes for a protocol listener.
type authListener struct {
	k     *Kernel
	proto byte
	ln    net.Listener
	ch    chan net.Conn
	done  chan struct{}
	once  sync.Once
	sem   chan struct{} // one token per handshake in progress
	wg    sync.WaitGroup
}

func (l *authListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			l.close()
			return
		}
		select {
		case l.sem <- struct{}{}:
		default:
			l.k.stats.handshake.Add(1)
			l.k.warn("too many authenticated stream handshakes at once", "remote", c.RemoteAddr().String(), "proto", l.proto)
			c.Close()
			continue
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

// handshake authenticates c and queues it for Accept; the listener's done
// channel closes c if the listener closes meanwhile.
func (l *authListener) handshake(c net.Conn) {
	defer l.wg.Done()
	defer func() { <-l.sem }()
	c.SetDeadline(time.Now().Add(l.k.handshakeTimeout()))
	stop := context.AfterFunc(lifecycle.DoneContext(l.done), func() { c.Close() })
	ac, err := l.k.authHandshake(c, l.proto, false)
	if !stop() {
		c.Close()
		return
	}
	if err != nil {
		l.k.stats.handshake.Add(1)
		l.k.warn("authenticated stream handshake failed", "remote", c.RemoteAddr().String(), "proto", l.proto, "err", err)
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	select {
	case l.ch <- ac:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next authenticated connection.
func (l *authListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, fmt.Errorf("%s: %w", authListenerCloseError, net.ErrClosed)
	}
}

func (l *authListener) close() { l.once.Do(func() { close(l.done) }) }

// Close stops accepting, closes the connections not yet accepted and waits
// for the handshakes in progress.
func (l *authListener) Close() error {
	l.close()
	err := l.ln.Close()
	l.wg.Wait()
	for {
		select {
		case c := <-l.ch:
			c.Close()
		default:
			return err
		}
	}
}

// Addr is the kernel's listening address.
func (l *authListener) Addr() net.Addr { return l.ln.Addr() }

// sealedConn seals each write into AES-256-GCM records and opens the
// peer's records on read. Reads and writes may run concurrently with each
// other (one reader and one writer at a time each).
type sealedConn struct {
	net.Conn

	rmu   sync.Mutex
	open  cipher.AEAD
	rseq  uint64
	rbuf  []byte // the current record's opened payload not yet read
	rerr  error  // sticky: a bad record ends the stream
	rdata []byte // reused buffer of sealed record bytes

	wmu   sync.Mutex
	seal  cipher.AEAD
	wseq  uint64
	wbuf  []byte
	werr  error
	nonce [authGCMNonceSize]byte
}

func newSealedConn(c net.Conn, sendKey, recvKey []byte) *sealedConn {
	return &sealedConn{Conn: c, seal: newGCM(sendKey), open: newGCM(recvKey)}
}

func newGCM(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic("kernel: AES key: " + err.Error()) // keys are always 32 bytes
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic("kernel: GCM: " + err.Error())
	}
	return g
}

func seqNonce(n *[authGCMNonceSize]byte, seq uint64) []byte {
	binary.BigEndian.PutUint64(n[4:], seq)
	return n[:]
}

// Read returns opened payload bytes, reading one record when none is left.
func (c *sealedConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.rbuf) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		c.rbuf, c.rerr = c.readRecord()
		if c.rerr != nil && len(c.rbuf) == 0 {
			return 0, c.rerr
		}
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

// readRecord reads and opens the next record.
func (c *sealedConn) readRecord() ([]byte, error) {
	var h [authHeaderSize]byte
	if _, err := io.ReadFull(c.Conn, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n < authTagSize || n > MaxAuthRecord+authTagSize {
		return nil, fmt.Errorf("%w: authenticated stream record of %d bytes (limit %d)", ErrBadSignature, n, MaxAuthRecord+authTagSize)
	}
	if cap(c.rdata) < int(n) {
		c.rdata = make([]byte, n)
	}
	buf := c.rdata[:n]
	if _, err := io.ReadFull(c.Conn, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return openRecord(c.open, c.rseq, buf, &c.rseq)
}

// openRecord opens sealed record bytes numbered seq in place and advances
// *next on success.
func openRecord(a cipher.AEAD, seq uint64, sealed []byte, next *uint64) ([]byte, error) {
	var nonce [authGCMNonceSize]byte
	out, err := a.Open(sealed[:0], seqNonce(&nonce, seq), sealed, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: authenticated stream record %d does not open", ErrBadSignature, seq)
	}
	*next = seq + 1
	return out, nil
}

// Write seals p into records of at most MaxAuthRecord bytes and writes
// them with one underlying Write.
func (c *sealedConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	buf := c.wbuf[:0]
	for rest := p; len(rest) > 0; {
		chunk := rest[:min(len(rest), MaxAuthRecord)]
		rest = rest[len(chunk):]
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(chunk)+authTagSize))
		buf = c.seal.Seal(buf, seqNonce(&c.nonce, c.wseq), chunk, nil)
		c.wseq++
	}
	if cap(buf) <= 2*(MaxAuthRecord+authTagSize+authHeaderSize) {
		c.wbuf = buf
	}
	if _, err := c.Conn.Write(buf); err != nil {
		c.werr = err // records already numbered: the stream cannot resume
		return 0, err
	}
	return len(p), nil
}
