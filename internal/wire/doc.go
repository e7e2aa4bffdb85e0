// Package wire is the byte-level codec of the notp kernel protocol: hello
// messages, records and envelopes. It is internal: only package kernel uses it.
//
// # Connection layout
//
// Every connection to a node's port (inside TLS when TLS is configured)
// starts with one protocol byte chosen by the dialer. The kernel's own
// protocol is [ProtoKernel]; other bytes are handed to other listeners.
//
// A kernel connection then carries, in each direction:
//
//	hello frame   u32be length | msgpack [version, flags, [id, host, port], nonce(bin 32)]
//	proof frame   u32be length | 32-byte HMAC-SHA256 (absent in insecure mode)
//	record*       u32be n | payload (n bytes) | MAC (32 bytes; absent in insecure mode)
//
// Both sides send their hello, read the peer's, then send and check proofs.
// With T = dialer hello bytes || acceptor hello bytes (exact bytes as sent,
// including their length prefixes), each side's proof is
// HMAC-SHA256(cookie, label || T) with label "notp/1 proof dialer" or
// "notp/1 proof acceptor", and the per-direction session keys are
// HMAC-SHA256(cookie, "notp/1 key dialer->acceptor" || T) and
// HMAC-SHA256(cookie, "notp/1 key acceptor->dialer" || T). The fresh 32-byte
// nonces make every session's keys unique, so records cannot be replayed
// across connections.
//
// A record's MAC is HMAC-SHA256(sessionKey, seq || n || payload) where seq is
// the implicit per-direction record counter (u64be, starting at 0, never
// sent) and n the u32be payload length. A replayed, reordered, truncated or
// altered record fails verification.
//
// A record payload is a sequence of frames, each u32be length | envelope,
// one write batch of the sender (many frames share one MAC).
//
// # Envelope
//
// An envelope is a msgpack array of six elements:
//
//	[kind uint, id str, tag str, stream nil|[id str, done bool], err nil|[code str, message str, fields map|nil], data bin|nil]
//
// kind is one of the Kind constants; id is the target name (KindMsg) or the
// reply tag (KindReply, KindPong, KindCredit); tag is the reply tag of a
// call or ping.
//
// # Reply-stream flow control
//
// A reply larger than one chunk travels as a stream of KindReply envelopes
// sharing a stream id. Its sender starts with [StreamWindow] chunks of
// credit and spends one per chunk (the final, done chunk included); at zero
// it waits. The caller grants more with KindCredit envelopes
// [5, tag, "", nil, nil, bin u32be n] as it consumes chunks, and cancels the
// stream with [5, tag, "", nil, err, nil] when it stops reading. Credit for
// tags the replier is not streaming to is ignored, so a caller may grant
// for any chunked reply.
// The sender's node is not repeated in envelopes: it is the node
// authenticated by the hello.
//
// Kind values, [Version] and the hello flags are append-only: never renumber
// or reuse them.
package wire
