// Package kernel is notp's messaging kernel: one TCP (optionally TLS) port
// per node, one authenticated outbound link per peer, and routing of casts,
// calls, replies, pings and streams to handlers registered by name.
//
// # Usage
//
//	k, _ := kernel.New(kernel.Config{Node: notp.Node{ID: "a", Host: "10.0.0.1", Port: 7022}, Cookie: secret})
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
// Every kernel connection starts with a hello exchange: each side sends a
// fresh 32-byte random nonce and its node, then proves knowledge of the
// cookie with an HMAC-SHA256 over the whole transcript (both hellos, which
// include the protocol version). Per-direction session keys are derived
// from the cookie and the transcript. Every record (one write batch of many
// frames) carries an HMAC-SHA256 over its exact bytes and an implicit
// per-direction sequence number, compared in constant time, so tampered,
// replayed, reordered or truncated records are rejected: the connection is
// closed and the rejection counted in [Stats]. From.Node of a delivered
// message is the node authenticated by the hello, never a claim inside a
// message. The cookie proves membership, not confidentiality: use
// Config.TLS for that (the cookie is still checked inside TLS). An empty
// cookie requires Config.Insecure (then nothing is authenticated). The byte
// layout is documented in internal/wire.
//
// # Concurrency
//
// All methods are safe for concurrent use. Each connection has one reader
// goroutine, which calls Handle for the messages arriving on it, one at a
// time, in arrival order; local messages are handled on the caller's
// goroutine. Messages from one node over one connection keep their order.
// A slow Handle stalls its connection: hand work to another goroutine (as
// package genserver does). Cast, Call and stream chunks wait while a
// connection has more than 1 MiB unwritten (backpressure, bounded by
// WriteTimeout); replies never wait. While a link is (re)connecting, sends
// are queued (QueueLen, oldest dropped) and flushed in order on connect.
// Each connection has one writer goroutine that writes everything queued
// since its last write as one record, so idle sends go out at once and busy
// connections batch without timers. Call waits for the reply, ctx, or
// Close. Close waits for every goroutine the kernel started.
//
// Streamed replies (CallStream) are buffered by the connection reader up to
// MaxStreamSize per stream, so a slow stream reader never blocks other
// traffic; there is no credit-based flow control yet.
package kernel
