// Package notp is the root of notp for Go, a toolkit for building
// actor-based services that run across machines. It is a Go port of notp
// (the JavaScript library also known as clusterluck), with stronger
// guarantees: authenticated frames, context deadlines everywhere, bounded
// vector clocks and crash-safe persistence.
//
// This package holds only the vocabulary every other package shares: [Node],
// the identity and address of one cluster member.
//
// # Map of the module
//
//   - [github.com/notp-go/notp/chash]: a weighted consistent hash ring with
//     preference lists; usable on its own to shard keys across servers.
//   - [github.com/notp-go/notp/vclock]: vector clocks with merge, descends,
//     compare and trimming; usable on its own.
//
// Packages that import neither the network nor each other (chash, vclock)
// depend only on this package and their hashing/encoding libraries, so a
// program that only shards keys pays for nothing else.
package notp
