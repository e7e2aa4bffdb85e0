// Package kernel is notp's messaging kernel: one TCP (optionally TLS) port
// per node, one authenticated outbound link per peer, and routing of casts,
// calls, replies, pings and streams to handlers registered by name.
//
// # Usage
//
//	k, _ := kernel.New(kernel.Config{Node: notp.Node{ID: "a", Host: "10.0.0.1", Port: 7022}, Cookie: secret}) // secret: notp-cli keygen
//	_ = k.Start(ctx)
//	defer k.Close()
//	k.Register("echo", kernel.HandlerFunc(func(m kernel.Message) { k.Reply(m.From, m.Data) }))
//	_ = k.Connect(peer)                         // peer is another node's notp.Node
//	reply, err := k.Call(ctx, peer, "echo", []byte("hi"))
//
// A node whose ID is Self().ID is served in-process. Replies travel back
// over the connection the request arrived on, so the callee needs no link
// to the caller.
//
// # Security model
//
// The cookie is a shared secret that authenticates membership: any holder
// can join, and can claim any node ID. It does not identify nodes and
// does not encrypt: use Config.TLS for confidentiality (the cookie is still
// checked inside TLS). An empty cookie requires Config.Insecure (then
// nothing is authenticated); a cookie shorter than [MinCookieLen] (16)
// bytes is refused with [ErrWeakCookie] unless Config.AllowWeakCookie is
// set. Generate cookies with `notp-cli keygen` (32 random bytes).
//
// Keys. [New] stretches the cookie once per process into a 32-byte master
// key with argon2id (salt "notp/2 cookie master key", 2 passes, 19 MiB, 1
// lane); kernels of one process sharing a cookie share the result.
// BenchmarkStretch measures one stretching at 30–70 ms on a 2-core VM
// shared with other work (more when the cores are busier, and several
// times that under the race detector). That is also the cost of every
// guess of an offline attacker, instead of the microsecond or so of one raw
// HMAC-SHA256: a human-chosen cookie is still guessable, a random 16-byte
// one is not. Every key is HMAC-SHA256(master, label || data) with a
// distinct label: the hello proofs, the two per-direction session keys,
// and the keys other protocols get from [Kernel.DeriveKey] (gossip's
// memberlist encryption).
//
// Hello. The dialer sends its hello (a fresh 32-byte random nonce and its
// node and its protocol version range); the acceptor checks it and
// answers with its own. Each side refuses a version range that does not
// overlap its own, an invalid node, its own node ID or its own
// nonce (a reflected hello). Then the dialer proves knowledge of the cookie
// with an HMAC over the transcript (both hellos, which include the version,
// and under TLS the session's exported keying material), and only if that
// proof is right does the acceptor send its own proof. So dialing a node
// without the cookie yields nothing to test guesses against offline; a
// dialer does reveal its proof to the node it dials, which is why the
// stretching matters for nodes that can be made to dial an attacker.
// Binding the TLS channel means a relay that terminates TLS towards each
// side (with a stolen certificate, or against a peer that skips
// verification) cannot splice two sessions. TLS is at least 1.2 whatever
// Config.TLS says.
//
// Records. Every record (one write batch of many frames) carries an
// HMAC-SHA256 under its direction's session key over its exact bytes and
// an implicit per-direction sequence number, compared in constant time, so
// tampered, replayed, reordered or truncated records are rejected: the
// connection is closed and the rejection counted in [Stats]. From.Node of
// a delivered message is the node authenticated by the hello, never a
// claim inside a message. The byte layout is documented in internal/wire.
//
// # Cookie rotation
//
// A node holds a [Keyring] of up to [MaxKeys] cookies: Config.Cookie, the
// primary, which it proves with when it dials, and Config.Keys, further
// cookies it accepts. An acceptor checks a dialer's proof against every
// installed key and answers with the one that matched, which then keys
// the session. [Kernel.Keyring] changes the set at runtime, so a cluster
// changes its cookie without downtime in three steps, each done on every
// node before the next starts:
//
//  1. Install the new cookie: every node accepts both, proves with the old.
//  2. Use the new cookie: every node proves with it (and still accepts the
//     old one from nodes not yet switched).
//  3. Remove the old cookie: hellos proven with it are refused, and the
//     connections it keys are closed without failing calls. A node's own
//     links move to a new connection at once and close the old one when
//     its calls are answered; a connection a peer opened is closed when
//     the peer does so (it removes the key too) or after
//     Config.KeyRetireGrace.
//
// Keys are named by a fingerprint ([KeyID], [KeyInfo]); the keyring never
// logs, returns or puts a cookie in an error. Records are authenticated,
// not encrypted, so a new cookie sent to another node's keyring travels
// sealed: [Kernel.SealCookie] encrypts it under a key derived from the
// sender's primary cookie and [Keyring.InstallSealed] opens it with any
// installed one; use and remove name the key by its fingerprint. Each cookie is stretched
// once per process; the keyring keeps only the 32-byte master keys.
//
// Certificates. A [CertReloader] set on Config.TLS (Apply) serves the
// certificate of a pair of PEM files and re-reads them when their size or
// modification time changes (checked on a handshake at most once per
// interval), or at once on [CertReloader.Reload]: renewed certificates
// are taken without a restart, by new handshakes; open connections keep
// theirs. A pair that fails to load leaves the current certificate in use.
//
// # Protocol versions
//
// The hello offers a range of protocol versions, [internal/wire's
// MinVersion, Version]. Two nodes talk when their ranges overlap (at the
// highest version both speak); otherwise both sides fail the handshake
// with an error wrapping [ErrProtocolVersion] that names both ranges. A
// release that introduces version n+1 still speaks n, so a cluster is
// upgraded one node at a time; a later release drops n once no node of
// the older one is left.
//
// Seeds. [Kernel.Identify] runs the hello with an address and returns
// the node there, authenticated: a node that knows a seed only by a DNS
// name (package discover) learns the id it needs to address it.
//
// Authenticated streams. Other protocols sharing the port get byte streams
// from [Kernel.ListenAuth] and [Kernel.DialAuth] with the same guarantees:
// a mutual challenge-response over fresh nonces under a key from
// DeriveKey (the dialer proves first; the acceptor sends nothing derived
// from the cookie before checking that proof; bound to the TLS session
// under TLS), then every byte sealed in AES-256-GCM records of at most
// [MaxAuthRecord] bytes with per-direction keys and counter nonces, so a
// peer without the cookie can neither open a stream nor inject, replay or
// alter bytes in one. Handshakes are bounded by Config.HandshakeTimeout
// and at most 16 run at once per listener; failures count as
// RejectedHandshake. An insecure kernel gets plain streams, and a secure
// and an insecure kernel refuse each other. The byte layout is documented
// in authconn.go.
//
// # Other protocols on the port
//
// The protocol mux is how other protocols share the node's one port: every
// connection to the port starts (after the TLS handshake, when Config.TLS
// is set) with one protocol byte that picks who gets it. [ProtoKernel]
// ('K') is the kernel's own; a protocol takes another byte with
// [Kernel.Listen] and reaches its peers with [Kernel.Dial], which dials
// the address (with TLS when configured) and writes the byte. Bytes in
// use in the module:
//
//   - 'K' ([ProtoKernel]): the kernel's links.
//   - 'M' (gossip.MemberlistProto): memberlist's TCP streams, on Listen
//     and Dial; memberlist encrypts them itself, with a key from
//     [Kernel.DeriveKey] (none on an insecure kernel). Its packets use
//     UDP on the same port number, outside the mux.
//   - 'R' (conflux.Proto): Raft, on ListenAuth and DialAuth; the groups of
//     a node share the one listener, each stream naming its group first.
//
// Protocol bytes are append-only: a byte once given to a protocol is never
// reused for another, or nodes of different releases would hand each
// other's connections to the wrong listener.
//
// A kernel has at most one listener per byte: Listen fails for
// ProtoKernel, for a byte that already has a listener, and with
// ErrNotStarted or ErrClosed outside Start..Close; the listener's Close
// frees the byte, and the kernel's Close closes every listener (Accept
// then fails with net.ErrClosed). Dial, too, fails with ErrNotStarted or
// ErrClosed outside Start..Close. The acceptor reads the byte within
// Config.HandshakeTimeout of the accept, the TLS handshake included (a
// failed one counts in Stats.RejectedHandshake). A connection that sends
// no byte in time, or a byte nobody listens for, is closed and counted in
// Stats.RejectedUnknownProto (these rejections are logged at most once a
// second). Until its listener's Accept takes it, an accepted connection
// counts against Config.MaxPendingConns and MaxPendingPerIP like an
// unauthenticated kernel connection; one that Accept does not take within
// HandshakeTimeout of the accept is closed. Once taken, the connection and its limits belong
// to the protocol: the kernel no longer bounds or watches it, and the
// kernel's Close does not close it.
//
// Listen and Dial authenticate nothing: anyone who can reach the port can
// open a connection with any byte (only TLS, when configured, stands in
// between). A protocol that does not authenticate its peers itself uses
// [Kernel.ListenAuth] and [Kernel.DialAuth] instead (see Authenticated
// streams above): on a kernel with a cookie their Accept yields only
// connections whose dialer proved it, with every byte sealed.
//
// # Network seam
//
// Config.Listen and Config.Dial, when set, replace net's listener and
// dialer, so tests can run many kernels over a fault-injecting network
// that partitions nodes and cuts connections (internal/faultnet), or over
// in-memory pipes inside a testing/synctest bubble, where the reconnect
// backoff, stream idle timeouts, call timeouts and the write-buffer
// janitor run on a fake clock. The raw-socket paths below need a
// *net.TCPConn; other connections use their own Read and Write.
//
// # Reconnecting
//
// A link redials after a failed dial or a lost connection, waiting a
// backoff drawn from [b/2, b] where b starts at ReconnectMin, doubles
// after each wait up to ReconnectMax, and starts over once a connection
// is made. The wait after a lost connection is never skipped, so a peer
// that accepts and drops connections is not redialled in a tight loop.
//
// # Concurrency
//
// All methods are safe for concurrent use. Each connection has one reader
// goroutine, which calls Handle for the messages arriving on it, one at a
// time, in arrival order; local messages are handled on the caller's
// goroutine. Messages from one node over one connection keep their order.
// A slow Handle stalls its connection: hand work to another goroutine (as
// package genserver does).
//
// Writes follow one rule: send at once when the connection is idle,
// coalesce only while a write is in flight, no timers. A Call, Ping or
// stream chunk on an idle connection is sealed and written by the calling
// goroutine itself (one non-blocking write on plain TCP); whatever is sent
// while a write is in flight is written next as one record by the
// connection's writer goroutine. Casts, and calls while other calls on the
// same link await replies, go through the writer goroutine, so busy
// connections batch; so do replies sent while more calls from the same peer
// await theirs. Replies produced while the reader dispatches a record leave
// together in one write when the record is done, or, when more whole
// records had already arrived with it, when those are done too (so a reply
// sent from another goroutine while a Handle on that connection runs waits
// for Handle to return, another reason to keep Handle short). The reader never
// blocks on a write: it only makes non-blocking writes (under TLS too, on
// Unix) and leaves the rest to the writer goroutine.
//
// Cast, Call and stream chunks wait while a connection has more than 1 MiB
// unwritten (backpressure, bounded by WriteTimeout); replies never wait:
// instead, while more than 1 MiB of replies to a peer are unwritten, the
// connection's reader stops reading that peer's requests (see Budgets).
// A busy connection reuses its write buffers; one that has written nothing
// for a whole 10 s round of the kernel's janitor gives back those over
// 64 KiB, so a burst does not leave quiet connections holding megabytes.
// While a link is (re)connecting, sends are queued (QueueLen, oldest
// dropped) and flushed in order on connect. Call waits for the reply, ctx,
// or Close, unless it fails fast (see Failure semantics). Close waits for
// every goroutine the kernel started.
//
// # Failure semantics
//
// A Call, Ping or CallStream never waits for silence when the kernel knows
// the answer cannot come. It ends with the reply or one of these errors
// (wrapped with the peer's id; test with errors.Is):
//
//   - a *RemoteError: raised on the node (by its handler, or by its kernel:
//     CodeUnknownName, CodeHandlerPanic, CodeBufferLimit, CodeTimeout).
//   - ErrUnknownNode, at once: no link to the node (see Connect).
//   - ErrNodeDown, at once: the link has no connection and its last
//     connection attempt failed (the error also wraps a *LinkError with
//     that attempt's error), or the membership layer reported the node
//     dead or gone (Kernel.SetNodeDown, called by package gossip from
//     memberlist's events; the mark holds even while a connection is up,
//     as it may be half open). A first connection attempt still in
//     progress, or a redial after a connection closed, is not a failure:
//     requests are queued for it. Any successful connection with the node
//     clears the mark, and a link whose last dial failed redials at once,
//     instead of after its backoff (up to ReconnectMax), when the node is
//     seen alive: it connects in, or SetNodeDown(id, false). Casts are
//     never refused: they are queued or sent.
//   - ErrConnectionLost, as soon as the connection the request was written
//     on closes: the reply could only have come back over it. The request
//     may or may not have been handled. A peer that vanishes without
//     closing (power loss, a partition) is noticed too: on Linux data
//     unacknowledged for WriteTimeout closes the connection
//     (TCP_USER_TIMEOUT), and an idle one is closed after about 30 s of
//     unanswered keepalive probes. Requests still queued for the next
//     connection keep waiting for it instead.
//   - ErrQueueFull, at once: the request was dropped from the full
//     reconnect queue (Config.QueueLen, oldest dropped), so it was never
//     sent.
//   - ErrInactiveConnection, at once: the link was stopped (Disconnect, or
//     Connect to a node that moved) before or while the request was queued
//     (one already written gets ErrConnectionLost).
//   - ctx's error (Config.CallTimeout when ctx has no deadline): no reply in
//     time; the request may or may not have been handled.
//   - ErrClosed: the kernel closed; ErrNotStarted, at once: Start has not
//     been called yet.
//
// A handler panic is recovered and counted in Stats.HandlerPanics. On a
// message from another node it also closes the connection the message
// arrived on, logged with the peer and handler name: the panic may have
// left that connection's state inconsistent (as net/http closes the
// connection of a panicking handler). The caller gets CodeHandlerPanic when
// that reply gets out first, else ErrConnectionLost; the link reconnects.
// The Stats count each fast failure (CallsNodeDown, CallsLost,
// CallsQueueFull).
//
// Streamed replies are flow-controlled per stream: ReplyStream may send
// [StreamWindow] (16) chunks ahead of the caller, then waits (bounded by
// its ctx) for the caller to grant more, which a CallStream reader does as
// it reads and Call does as chunks arrive. So a slow stream reader holds at
// most one window in memory, never blocks the connection's reader, and
// does not delay other traffic. Because credit arrives through the reader,
// call ReplyStream from a goroutine of your own, not from inside Handle.
//
// # Budgets
//
// No input makes a node hold more than it was configured to. Each limit,
// its default and what happens over it:
//
//   - Config.MaxPendingConns (256): accepted connections not yet through
//     the hello, or for another protocol not yet taken by its [Kernel.Listen]
//     listener. One more is closed at once (Stats.RejectedPending).
//     Stats.PendingConnections is the number now.
//   - Config.MaxPendingPerIP (32): the same, from one remote IP address, so
//     one host cannot take every slot (Stats.RejectedPerIP).
//   - Config.HandshakeTimeout (5 s): how long a pending connection may take.
//   - Config.MaxFrameSize (8 MiB): the largest record; a larger one closes
//     the connection (Stats.RejectedTooLarge).
//   - Config.MaxStreamSize (10 MB) and StreamTimeout (30 s): one incoming
//     stream; over either the stream is aborted and the caller gets a
//     CodeBufferLimit or CodeTimeout error (Stats.StreamsAborted). At most
//     1024 partial streams per connection.
//   - Config.MaxPeerBytes (64 MiB): one authenticated connection's partial
//     incoming streams (the chunks they were sent, kept as they came and
//     joined when a stream ends), its unwritten bytes and the bytes of its
//     messages that handlers hold ([Message.Hold]; package genserver holds
//     what waits in a mailbox). A stream chunk that does not fit aborts
//     its stream with CodeBufferLimit (Stats.BudgetStreamAborts) and
//     closes the connection, which frees all its partial streams at once
//     (a peer left sending chunks the node can only decode and drop would
//     swell the heap with garbage); while held messages alone exceed it
//     the reader stops reading that peer (Stats.BudgetPauses, HeldBytes).
//   - Unwritten replies (1 MiB): replies (and pongs and credits) never wait
//     for the writer, so while more than 1 MiB of them are unwritten the
//     connection's reader stops reading that peer (Stats.BudgetPauses),
//     which TCP turns into backpressure on a peer that sends calls without
//     reading the replies. The writer closes a connection whose peer takes
//     nothing for WriteTimeout (10 s), and the reader gives up after
//     twice that, for replies or held messages alike (Stats.BudgetCloses
//     counts connections closed while their reader waited). Only replies count toward this mark: a reader
//     stopped by its own outgoing requests would stop reading the replies
//     to them, and two nodes calling each other could wait on each other.
//   - Unwritten requests (1 MiB): Cast, Call and stream chunks wait (see
//     Concurrency); a link's reconnect queue holds Config.QueueLen
//     messages, dropping the oldest.
//
// Measured in this package's tests (TestBudgetUnreadReplies,
// TestBudgetPartialStreams): a peer that sends echo calls and reads no
// reply gets about 12 MB read before the node stops reading it, with the
// heap 11 MB larger (without the mark the node read 58 MB in the 3 s
// before its write timeout, and its heap grew by 169 MB); 100 partial
// streams of 256 KiB against a 4 MiB budget grow the heap by about 10 MB
// before the connection is closed (25 MiB held without the budget).
// bench/cmd/attack measures examples/node with the defaults (its
// README has the tables): a peer sending echo calls without reading
// replies peaked at 726–813 MB of resident memory before these budgets,
// 45 MB after; 100 partial streams of 4 MB, 647–693 MB before.
//
// Not counted: what a Handle keeps without [Message.Hold].
//
// # Counters
//
// [Kernel.Stats] returns the counters named throughout this doc, plus
// Calls and Casts (made by this node, local ones included),
// CallsHandled and CastsHandled (delivered to its handlers), and
// CallLatency: a histogram of every Call's duration, successful or not,
// in fixed buckets from 25 µs to 30 s ([CallLatencyBounds]), kept with
// one atomic add per call so that concurrent callers share no lock.
// Package metrics exports them to Prometheus.
//
// # Latency and busy polling
//
// On Unix every socket read and write is a raw non-blocking syscall (also
// under TLS); a reader with nothing to read sleeps in the runtime's poller
// and is woken by the operating system when data arrives. That wake-up is
// most of a call's round trip on virtual machines. Busy polling makes a
// connection's reader that finds its socket dry keep reading it for a
// while first, yielding the processor between attempts, so it sees the
// next record at once.
//
// By default (Config.BusyPoll 0) each reader decides from its own traffic
// whether polling pays. It measures how long the data took to come after
// its socket ran dry. It starts polling once that was within 200 µs three
// times in a row, with a 10 µs window; doubles the window (up to 200 µs)
// whenever the data came after it but within 200 µs; halves it (not below
// 10 µs) when a poll finds data within a quarter of it; and stops at once
// the first time the socket stays dry for more than 200 µs. A
// request/response loop therefore polls on both sides, while a connection
// with sparse or idle traffic sleeps in the poller like an unpolled one,
// making the same read(2) calls (one short gap among sparse records starts
// nothing; reading the clock when the socket is dry is all it adds). A
// positive BusyPoll is a fixed window polled after every dry read;
// [BusyPollOff] (any negative BusyPoll) never polls.
//
// In every mode at most Config.MaxPollers readers poll at once (default
// GOMAXPROCS-1, at least 1); a reader over the cap sleeps at once, so a
// busy node never spins all its cores. A polling reader yields to the
// process's other goroutines between attempts; when one attempt takes more
// than 50 µs (the operating system preempted the reader's thread, or the
// process had that much other work to run) the cores are oversubscribed,
// spinning would only keep the peer or other work off them, and the reader
// stops polling for 20 ms. Close ends a polling reader at its next read
// attempt.
//
// Stats.PollHits and PollMisses count the polls that found data and those
// that gave up, PollNanos the time spent polling, PollCapped the polls the
// cap refused and PollContended those stopped on oversubscribed cores.
// In bench/cmd/kernelbench (two processes on a 2-core VM; the runs are in
// bench/README.md) the defaults' sequential call p50 was within 0.97–1.16x
// of a fixed 50 µs BusyPoll and 1.11–1.45x a raw TCP ping-pong while a
// core was spare (28–38 µs; 49–57 µs with polling off), every mode measured
// alike with all cores busy, and 50 idle connections or 200 calls/s at
// random intervals cost what they cost with polling off, within the
// machine's noise.
package kernel
