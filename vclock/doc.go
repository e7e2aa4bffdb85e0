// Package vclock implements vector clocks: per-actor event counters that tell
// whether one version of some state has seen another (it descends it) or
// whether two versions were changed independently (they are concurrent).
//
// It is the clock notp uses to version its hash ring, with notp's semantics
// kept exactly, but it depends only on the standard library and msgpack and
// is meant to be used on its own.
//
// # Usage
//
// Each replica increments its own entry when it changes the value, and ships
// the clock with the value. On receipt it compares clocks to decide what to
// do:
//
//	local := vclock.New()
//	local.Increment("node-a") // a local write
//
//	switch local.Compare(remote) {
//	case vclock.Before: // remote has seen everything we have: adopt it
//	case vclock.After, vclock.Equal: // nothing new: ignore it
//	case vclock.Concurrent: // both changed: resolve the values, then
//		local.Merge(remote) // the merged clock descends both
//	}
//
// Clocks are encoded as msgpack (the [msgpack.CustomEncoder] and
// [msgpack.CustomDecoder] interfaces) or JSON, both as the map
// {id: {count, insert, time}} with ids in ascending order, so equal clocks
// encode to equal bytes. Decoders validate their input, copy it, never panic,
// and return errors wrapping [ErrInvalidClock].
//
// The decoders are safe on untrusted bytes on their own, without a guard in
// front: decoding n bytes allocates a small multiple of n whatever lengths
// the input declares. The msgpack decoder checks every declared str, bin,
// ext, array and map length against the input left before reading or
// skipping it (msgpack.Unmarshal and a Decoder over a *bytes.Reader report
// it); on a stream of unknown length it refuses a str, bin or ext over
// 1 MiB. An unknown field it skips may nest at most 32 levels.
//
// # Entries and time
//
// An [Entry] holds a Count and two timestamps in microseconds since the Unix
// epoch: Insert (when the entry was first created, carried along by merges)
// and Time (the last update). Only counts decide causality; Time breaks ties
// in [Clock.Merge] and drives [Clock.Trim]. A clock reads the current time
// from [time.Now] unless built with [NewWithClock], which tests use to make
// timestamps deterministic.
//
// # Compare versus Equal
//
// [Clock.Compare] returns [Equal] when each clock descends the other, that is
// when both hold the same ids with the same counts; it agrees with
// [Clock.Descends] in both directions. [Clock.Equal] is stricter: it also
// requires identical Insert and Time fields, so it answers "is this the same
// clock value?" (a decoded copy is Equal to its original) rather than "have
// these replicas seen the same events?".
//
// # Merge
//
// Merging an empty clock changes nothing; merging into an empty clock copies
// the other one. Otherwise ids missing locally are copied, the higher count
// wins, and equal counts keep the entry with the later Time (the local one on
// a tie).
//
// # Trimming
//
// A clock gains an entry per actor. [Clock.Trim] bounds it, with
// [DefaultTrimOptions] being notp's LowerBound 10, YoungBound 20 s,
// UpperBound 50 and OldBound 24 h:
//
//  1. a clock of at most LowerBound entries is left alone;
//  2. otherwise the entries are ordered by Time (then id);
//  3. unless the oldest is older than YoungBound nothing is removed;
//  4. then the oldest entries are removed while more than UpperBound remain
//     or the entry is older than OldBound, stopping at the first survivor.
//
// Trimming forgets history, so a trimmed clock may look as if it descends a
// clock it has not seen. Use stable actor ids (one per node, not one per
// change) so the clock stays small and trimming is only a safety valve.
//
// # Concurrency
//
// A [Clock] is safe for concurrent use; it guards its entries with a
// sync.RWMutex and no method blocks on anything but that lock (and the time
// source given to [NewWithClock], which is called under it). Methods that
// involve a second clock (Merge, Descends, Compare, Equal) lock both clocks
// in a fixed global order, so a.Merge(b) racing b.Merge(a) cannot deadlock,
// and they see a consistent view of both. a.Merge(a) is a no-op. The
// iterator returned by [Clock.All] works on a snapshot, so its loop body may
// call the clock's methods. A Clock must not be copied after first use; use
// [Clock.Clone].
package vclock
