// Package chash is a consistent-hash ring of [notp.Node] values: it maps keys
// to the nodes that own them and gives per-key preference lists, for
// sharding data, locks or actors across a cluster.
//
// # Tokens and ownership
//
// A node of weight w owns w tokens (virtual nodes), Token(ID, i) =
// xxhash.Sum64String(ID + "_" + strconv.Itoa(i)) for i = 1..w. A key is owned
// by the first token strictly greater than xxhash.Sum64(key), wrapping to the
// smallest token; a key that hashes exactly to a token belongs to the next
// one. Tokens are kept in a github.com/google/btree ordered by unsigned
// value; the astronomically rare tie between two nodes' tokens is broken by
// node ID, so every ring with the same members has the same order.
//
// Orders differ from the JavaScript notp ring, which hashed with SHA-256 and
// compared base64 strings: the same members own different keys here.
//
// # The factors
//
// rfactor (default [DefaultRFactor], 128) is the default weight: the number
// of tokens [Ring.Insert] gives a node when no weight is passed. It is not a
// replication factor: more tokens spread a node's share of the keys more
// evenly (relative standard deviation 1/sqrt(tokens): at 128 tokens per
// node three nodes own a third each within a few percent and the largest
// share of 64 nodes is within about 1.25× of the mean; at notp's 3 it can
// be over 2×). Lookups cost about the same at any weight; a token takes
// about 100 bytes (tree and lookup tables), some 13 KB per node at 128.
//
// pfactor (default [DefaultPFactor], 2) is the default number of neighbours
// asked of [Ring.Next] and [Ring.Prev]; pfactor+1 is the default length of a
// per-key preference list ([Ring.RangeNext]): the owner and its pfactor
// successors, where replicas of a key conventionally live. The methods take
// the length explicitly; callers pass r.PFactor() or r.PFactor()+1.
//
// # Usage
//
//	ring := chash.New(0, 2)               // DefaultRFactor tokens per node
//	for _, n := range members {
//		ring.Insert(n, 0)                  // weight 0: rfactor tokens
//	}
//	owner, ok := ring.OwnerString("user:42") // shard of a key
//	replicas := ring.AppendRangeNext(buf[:0], []byte("user:42"), ring.PFactor()+1)
//
// Each Insert, Remove or Update publishes a new read snapshot of every
// token, so a ring of many nodes built one Insert at a time costs
// O(nodes × tokens). [Build] (a ring from a list of [Weighted] nodes) and
// [Ring.Apply] (removals and updates of many nodes) hash and sort the
// tokens of the whole change once and publish one snapshot: 100 nodes of
// 4096 tokens take a fraction of a second instead of seconds.
//
// A ring encodes to msgpack ([Ring.EncodeMsgpack]) and JSON
// ([Ring.MarshalJSON]) as {rfactor, pfactor, tokens: [{token, node}]} in ring
// order; decoding validates every token against its node's ID, so a corrupt
// or forged encoding is an error wrapping [ErrInvalidRing]. The decoders are
// safe on untrusted bytes on their own: decoding n bytes allocates a small
// multiple of n whatever lengths the input declares (the msgpack decoder
// checks every declared length against the input left before reading or
// skipping it; on a stream of unknown length it refuses a str, bin or ext
// over 1 MiB).
//
// # Concurrency
//
// A Ring is safe for concurrent use. Writers (Insert, Remove, Update, Apply,
// Merge, Intersect, decoding) are serialised by a mutex; each builds a new immutable
// snapshot — a sorted token slice, a parallel slice of owner indexes, a node
// table and two tables over the top bits of the hash — and publishes it with
// an atomic pointer store. Readers (Owner, RangeNext, Next, Get, Nodes,
// Shares, encoding, …) load the current snapshot and never lock or wait. A
// Owner costs a hash and one read of the lookup table, which names the owner
// outright for all but 1–3% of hashes (those scan a token or two); the two
// tables take 24–48 bytes per token. A write costs O(tokens) and becomes
// visible to reads that start after it returns; a read that started earlier
// finishes on the previous snapshot. Each method sees one snapshot, but two
// successive calls may see different ones: to make several lookups against
// one version, take a [Ring.Clone], which is cheap (the btree is cloned
// copy-on-write and the snapshot is shared).
package chash
