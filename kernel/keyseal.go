package kernel

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealLabel is the DeriveKey label of the key that seals cookies sent to
// a keyring (SealCookie). Append-only, like every derivation label.
const sealLabel = "keyring cookie transfer AES-256-GCM"

// MaxSealedCookie bounds what OpenSealed and InstallSealed accept, in
// bytes: a sealed cookie of up to 4 KiB.
const MaxSealedCookie = 4096 + 12 + 16

// ErrSealed: a sealed cookie opens under none of the keyring's keys
// (sealed with another cookie, or altered), or is malformed.
var ErrSealed = errors.New("kernel: sealed cookie does not open")

// SealCookie encrypts cookie for the nodes that share this kernel's
// primary key: AES-256-GCM under a key derived from it (nonce first). The
// kernel authenticates records but does not encrypt them, so a new
// cookie sent to a node's keyring over a connection without TLS must be
// sealed; only holders of a key the receiver has installed can open it
// ([Keyring.InstallSealed]). Fails with ErrInsecure without a key.
func (k *Kernel) SealCookie(cookie string) ([]byte, error) {
	key := k.DeriveKey(sealLabel)
	if key == nil {
		return nil, fmt.Errorf("kernel: seal cookie: %w", ErrInsecure)
	}
	if len(cookie) > MaxSealedCookie-12-16 {
		return nil, fmt.Errorf("kernel: seal cookie: %d bytes, at most %d", len(cookie), MaxSealedCookie-12-16)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(cookie)+aead.Overhead())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, []byte(cookie), nil), nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("kernel: seal: %w", err)
	}
	return cipher.NewGCM(b)
}

// openSealed decrypts a SealCookie output under any installed key.
func (r *Keyring) openSealed(sealed []byte) (string, error) {
	if len(sealed) > MaxSealedCookie || len(sealed) < 12+16 {
		return "", fmt.Errorf("%w: %d bytes", ErrSealed, len(sealed))
	}
	for _, key := range r.DeriveKeys(sealLabel) {
		aead, err := newAEAD(key)
		if err != nil {
			return "", err
		}
		n := aead.NonceSize()
		if plain, err := aead.Open(nil, sealed[:n], sealed[n:], nil); err == nil {
			return string(plain), nil
		}
	}
	return "", ErrSealed
}

// InstallSealed is Install of a cookie sealed by [Kernel.SealCookie] on a
// node sharing one of this keyring's keys; it returns the KeyID of the
// installed cookie. It fails with ErrSealed when the cookie opens under no
// installed key.
func (r *Keyring) InstallSealed(sealed []byte) (string, error) {
	cookie, err := r.openSealed(sealed)
	if err != nil {
		return "", err
	}
	if err := r.Install(cookie); err != nil {
		return "", err
	}
	return KeyID(cookie), nil
}
