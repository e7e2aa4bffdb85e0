// Package wire is the byte-level codec of the notp kernel protocol: hello
// messages, records and envelopes. It also holds the module's msgpack
// primitives: the append functions of the hand-written encoders and
// [Reader], the one msgpack reader of every hand-written decoder (this
// package's, genserver's request codec, the chash and vclock codecs and
// internal/msgpackcheck). It imports only the standard library, so the
// kernel's every byte from the network goes through code this module owns.
//
// # Reading msgpack
//
// A [Reader] reads from a byte slice and trusts no declared length: a str,
// bin or ext longer than the bytes left, an array declaring more elements
// than bytes left or a map more pairs than half of them is an error
// wrapping [ErrMalformed] before anything is read or allocated for it, so
// decoding n bytes allocates at most a small multiple of n. Values nest at
// most [MaxDepth] deep. Slices it returns alias its input. [Reader.MapFields]
// walks a map with str keys, the shape of a msgpack-encoded struct.
//
// A decoder handed a stream instead of bytes (a msgpack.CustomDecoder gets
// a *msgpack.Decoder) first takes the bytes of its one value with
// [ReadValue], which applies the same checks while it reads, and then
// decodes them with a Reader. msgpack's own Decoder must not read such
// input: it grows a pooled buffer towards a declared length before it
// knows the input holds it.
//
// # Connection layout
//
// Every connection to a node's port (inside TLS when TLS is configured)
// starts with one protocol byte chosen by the dialer. The kernel's own
// protocol is [ProtoKernel]; other bytes are handed to other listeners.
//
// A kernel connection then carries, in each direction, one hello frame, one
// proof frame (absent in insecure mode) and then records:
//
//	hello frame   u32be length | msgpack [version, flags, [id, host, port], nonce(bin 32), min version]
//	proof frame   u32be 32 | 32-byte HMAC-SHA256
//	record*       u32be n | payload (n bytes) | MAC (32 bytes; absent in insecure mode)
//
// The exchange (version 2) runs in this order, byte by byte:
//
//  1. dialer → acceptor: the protocol byte [ProtoKernel], then the dialer's
//     hello frame H_D.
//  2. The acceptor checks H_D (a version range [min version, version]
//     overlapping its own, insecure flag agreeing with its own,
//     a valid node, an ID other than its own, a nonce other than its own) and
//     only then sends its hello frame H_A. H_A holds nothing derived from the
//     cookie. The dialer checks H_A the same way.
//  3. dialer → acceptor: the dialer's proof P_D = HMAC-SHA256(M,
//     "notp/2 proof dialer" || T).
//  4. The acceptor checks P_D and closes the connection without writing
//     anything more if it is wrong. Otherwise acceptor → dialer: its proof
//     P_A = HMAC-SHA256(M, "notp/2 proof acceptor" || T), which the dialer
//     checks.
//  5. Records flow both ways, keyed per direction by
//     K_DA = HMAC-SHA256(M, "notp/2 key dialer->acceptor" || T) and
//     K_AD = HMAC-SHA256(M, "notp/2 key acceptor->dialer" || T).
//
// M is the 32-byte master key: argon2id(cookie, salt "notp/2 cookie master
// key", 2 passes, 19 MiB, 1 lane), computed once per process (package
// kernel). The dialer's M is its primary cookie's; an acceptor with several
// cookies (a keyring) checks P_D under each and uses the one that matched
// for P_A and the session keys. T = H_D || H_A (the exact frames, length prefixes included),
// followed under TLS by 32 bytes of the TLS session's exported keying
// material (RFC 5705, label "EXPORTER-notp/2 hello channel binding", no
// context), which both ends of one TLS session share and a relay that
// terminates TLS towards each side cannot make equal. The fresh 32-byte
// nonces make every session's keys unique, so records cannot be replayed
// across connections. Because the acceptor proves only to a dialer that
// has proved, a connection from someone without the cookie never receives a
// value to test cookie guesses against.
//
// In insecure mode (no cookie; [FlagInsecure] set in both hellos) steps 3
// and 4 are skipped and records carry no MAC.
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
// A hello of four elements (the first releases of version 2) offers
// [version, version]. An acceptor that finds no common version still
// sends its hello, so that the dialer can report both ranges, and then
// closes the connection.
//
// Kind values, [Version] and the hello flags are append-only: never renumber
// or reuse them.
package wire
