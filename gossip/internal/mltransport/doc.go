// Package mltransport is memberlist's transport over a notp kernel, so that
// a node is reached at one address.
//
// # One port
//
// The kernel owns a TCP (optionally TLS) listener on the node's host:port
// and demultiplexes accepted connections by their first byte. memberlist's
// stream connections (push/pull state sync, TCP fallback probes, Join) use
// protocol byte [Proto]: [New] takes the kernel's listener for it
// ([kernel.Kernel.Listen]) and [Transport.DialTimeout] dials with
// [kernel.Kernel.Dial], so streams get the kernel's TLS when it has one.
// memberlist's packets (probes, gossip) are UDP datagrams on the same port
// number, bound on the kernel's listening IP ([Config].ListenPacket may
// replace the socket, for fault-injection tests). An operator opens one port
// number, for TCP and UDP, and a peer needs one address: the node's
// host:port.
//
// memberlist only ever learns the kernel's address: [Transport.FinalAdvertiseAddr]
// returns the IP the kernel listens on (the kernel resolved a host name
// when it bound) and always the kernel's port. The package is internal so
// memberlist's types never reach notp's public API; package gossip creates
// the Transport and hands it to memberlist as Config.Transport:
//
//	tr, err := mltransport.New(k, logger) // k already started
//	cfg := memberlist.DefaultLANConfig()
//	cfg.Name = k.Self().ID
//	cfg.Transport = tr
//	cfg.SecretKey = mltransport.SecretKey(k)
//	cfg.BindPort, cfg.AdvertisePort = tr.Port(), tr.Port() // Join's default port
//	ml, err := memberlist.Create(cfg) // ml.Shutdown shuts tr down
//	if err != nil {
//		tr.Shutdown() // Create does not always do it on failure
//	}
//
// # Key derivation
//
// [SecretKey] gives memberlist a 32-byte SecretKey (AES-256-GCM) that the
// kernel derives from its argon2id-stretched cookie with the label
// "memberlist SecretKey AES-256" ([kernel.Kernel.DeriveKey]). The label
// separates it from the kernel's own HMAC keys, so knowing one key reveals
// nothing about the other. Every node with the same cookie derives the same
// key; nodes with another cookie cannot decrypt or forge gossip, so they
// cannot join.
// An empty cookie (a kernel with Config.Insecure) gives no key: gossip is
// then plain text.
//
// The transport itself does not authenticate anything: packets go to
// memberlist unverified and memberlist checks them with the key; stream
// connections arrive after the kernel's mux (and TLS, when configured),
// and memberlist decrypts their payload. Malformed or oversized input is
// dropped by memberlist; the transport never interprets it.
//
// # Stream limits
//
// Stream connections arrive before anything authenticates them, and
// memberlist reads a push/pull's whole (encrypted) state into memory
// before it can check it, one goroutine per stream. So the transport
// bounds streams before memberlist sees a byte ([Config], defaults in
// parentheses; [New] takes the defaults, [NewWithConfig] a Config):
//
//   - MaxStreams (4) inbound streams open at once: one more is closed as
//     it arrives (Stats.RejectedStreams) and its slot comes back when
//     memberlist closes a stream it held;
//   - MaxStreamBytes (8 MiB, the largest valid state of a ring of gossip's
//     10,000 nodes, see [DefaultMaxStreamBytes]) read from any stream,
//     inbound or dialed: a Read past it fails with [ErrStreamTooLarge]
//     and memberlist drops the stream (Stats.StreamsTooLarge);
//   - MaxInboundBytes (16 MiB) read from the inbound streams open at once,
//     given back as each closes, so that many streams each under
//     MaxStreamBytes do not add up (a Read past it fails the same way);
//   - StreamTimeout (5 s) from arrival for an inbound stream: memberlist's
//     own deadlines (TCPTimeout) are clamped to it (Stats.StreamTimeouts
//     counts reads that hit a deadline).
//
// So unauthenticated streams hold at most MaxInboundBytes of input
// (memberlist's buffers may double that) for at most StreamTimeout each;
// before the hand-off the kernel's own caps on unauthenticated
// connections apply (kernel.Config.MaxPendingConns, MaxPendingPerIP).
// Measured against examples/node: ten streams each sending 20 MB took the
// node's resident memory from 11 MB to 486 MB without these limits and to
// 89 MB with the defaults; TestStreamByteLimit sees the heap grow by about
// 85 MB with the defaults and by about 10 MB with a 1 MiB MaxStreamBytes.
//
// # Traffic counters
//
// [Transport.Stats] counts the packets and streams a transport carried and
// their payload bytes (stream connections are wrapped to count what
// memberlist reads and writes). [TotalStats] sums the same counters over
// every transport of the process: package gossip creates its transports
// internally, so benchmarks and process-wide metrics read that instead.
//
// # Concurrency
//
// All methods are safe for concurrent use, as memberlist requires. A
// Transport runs two goroutines: one accepts the kernel's [Proto]
// connections and one reads the UDP socket; each hands its items to
// memberlist over an unbuffered channel ([Transport.StreamCh],
// [Transport.PacketCh]) and blocks until memberlist takes them or the
// transport shuts down (the OS socket buffer, 2 MiB when allowed, absorbs
// bursts of packets meanwhile). WriteTo never blocks on the network beyond
// the socket write. DialTimeout blocks up to its timeout and is cancelled
// by Shutdown. Shutdown is idempotent, closes the listener and the socket,
// closes a stream not yet taken by memberlist, and waits for both
// goroutines. If the kernel closes first, the accept goroutine ends by
// itself; Shutdown must still be called to release the UDP socket.
package mltransport
