package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/memberlist"
	"github.com/notp-go/notp/gossip/internal/mltransport"
)

// newMLKeyring returns memberlist's keyring for the kernel's keys: the
// key derived from each kernel key, the primary's as primary. nil when
// the kernel has no cookie (no gossip encryption).
func (r *Ring) newMLKeyring() (*memberlist.Keyring, error) {
	keys := mltransport.SecretKeys(r.k)
	if len(keys) == 0 {
		return nil, nil
	}
	kr, err := memberlist.NewKeyring(keys[1:], keys[0])
	if err != nil {
		return nil, fmt.Errorf("gossip: memberlist keyring: %w", err)
	}
	return kr, nil
}

// SyncKeys brings memberlist's keyring in step with the kernel's
// ([kernel.Keyring]): memberlist then accepts gossip encrypted with the
// key derived from any of the kernel's keys, and encrypts with the
// primary's. The ring does this by itself within moments of every change
// of the kernel's keyring; a caller that changed the kernel's keyring
// calls it to have memberlist follow before it goes on (cluster's keys
// command does, so that a fan-out over the cluster never runs ahead of a
// node's memberlist). A no-op outside a ring and without a cookie.
func (r *Ring) SyncKeys() error {
	r.keysMu.Lock()
	defer r.keysMu.Unlock()
	kr := r.mlKeyring.Load()
	want := mltransport.SecretKeys(r.k)
	if kr == nil || len(want) == 0 {
		return nil
	}
	var errs []error
	for _, k := range want {
		if err := kr.AddKey(k); err != nil {
			errs = append(errs, err)
		}
	}
	if err := kr.UseKey(want[0]); err != nil {
		errs = append(errs, err)
	}
	for _, have := range kr.GetKeys() {
		if !slices.ContainsFunc(want, func(w []byte) bool { return bytes.Equal(w, have) }) {
			if err := kr.RemoveKey(have); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gossip: memberlist keyring: %w", err)
	}
	return nil
}

// watchKeys runs SyncKeys after every change of the kernel's keyring,
// until the ring stops.
func (r *Ring) watchKeys() {
	defer r.wg.Done()
	kr := r.k.Keyring()
	ch := kr.Changed()
	for {
		select {
		case <-r.stopCh:
			return
		case <-ch:
		}
		ch = kr.Changed() // before reading the keys: a later change fires it
		if err := r.SyncKeys(); err != nil {
			r.log.Warn("memberlist keyring not in step with the kernel's", "err", err)
		}
	}
}
