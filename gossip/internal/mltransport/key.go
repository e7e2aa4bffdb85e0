package mltransport

import "github.com/notp-go/notp/kernel"

// keyLabel is the kernel key derivation label of memberlist's SecretKey.
// It versions the derivation: changing it changes every node's key, so it
// is append-only like protocol bytes (a new derivation gets a new label).
const keyLabel = "memberlist SecretKey AES-256"

// SecretKey returns memberlist's SecretKey for the cluster of k: the
// 32-byte key (AES-256-GCM in memberlist) that k derives from its cookie
// for the label "memberlist SecretKey AES-256" ([kernel.Kernel.DeriveKey]).
// It comes from the stretched cookie like the kernel's own keys but is
// independent of them. A kernel without a cookie (Config.Insecure)
// returns nil: no gossip encryption.
func SecretKey(k *kernel.Kernel) []byte {
	return k.DeriveKey(keyLabel)
}
