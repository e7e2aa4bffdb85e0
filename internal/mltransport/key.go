package mltransport

import (
	"crypto/hkdf"
	"crypto/sha256"
)

// Key derivation labels. They version the derivation: changing either
// changes every node's key, so they are append-only like protocol bytes (a
// new derivation gets a new label, old ones stay documented).
const (
	keySalt = "notp-gossip-v1"
	keyInfo = "memberlist SecretKey AES-256"
)

// SecretKey derives memberlist's SecretKey from the cluster cookie:
// HKDF-SHA256 with the cookie as input keying material, salt
// "notp-gossip-v1" and info "memberlist SecretKey AES-256", 32 bytes
// (AES-256-GCM in memberlist). The labels separate this key from the
// kernel's cookie-derived keys. An empty cookie returns nil: no gossip
// encryption, for kernels running with Config.Insecure.
//
// SecretKey panics only where crypto/hkdf refuses the cookie: in FIPS
// 140-only mode (GODEBUG=fips140=only) for cookies under 14 bytes, which
// that mode's HMAC refuses for the kernel too.
func SecretKey(cookie string) []byte {
	if cookie == "" {
		return nil
	}
	key, err := hkdf.Key(sha256.New, []byte(cookie), []byte(keySalt), keyInfo, 32)
	if err != nil {
		// hkdf.Key fails only for lengths over 255*32 bytes or, in FIPS
		// 140-only mode, secrets under 112 bits.
		panic("mltransport: hkdf: " + err.Error())
	}
	return key
}
