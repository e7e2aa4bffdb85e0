package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/wire"
)

const (
	cookieOld = "keyring test cookie old 0123456789"
	cookieNew = "keyring test cookie new 0123456789"
	cookieX   = "keyring test cookie x 0123456789ab"
)

// call calls echo on to from from and fails the test on error.
func mustCall(t *testing.T, from, to *Kernel) {
	t.Helper()
	if _, err := from.Call(ctxT(t), to.Self(), "echo", []byte("hi")); err != nil {
		t.Fatalf("call %s -> %s: %v", from.Self().ID, to.Self().ID, err)
	}
}

// keyOf returns the id of the key of from's link session to to.
func keyOf(from, to *Kernel) string {
	if l := from.link(to.Self().ID); l != nil {
		if s := l.session(); s != nil && s.key != nil {
			return s.key.id
		}
	}
	return ""
}

func TestKeyringAPI(t *testing.T) {
	k := startKernel(t, func(c *Config) { c.Cookie = cookieOld })
	r := k.Keyring()
	if got := r.List(); len(got) != 1 || got[0] != (KeyInfo{ID: KeyID(cookieOld), Primary: true}) {
		t.Fatalf("List = %+v, want only the cookie, primary", got)
	}
	if id := KeyID(cookieOld); len(id) != 16 || strings.Contains(id, cookieOld) || id == KeyID(cookieNew) {
		t.Fatalf("KeyID = %q: want 16 hex digits, distinct per cookie", id)
	}
	for i := 0; i < 2; i++ { // installing twice is a no-op
		if err := r.Install(cookieNew); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.List(); len(got) != 2 || got[1] != (KeyInfo{ID: KeyID(cookieNew)}) {
		t.Fatalf("List after Install = %+v", got)
	}
	if err := r.Install("short"); !errors.Is(err, ErrWeakCookie) || strings.Contains(err.Error(), "short") {
		t.Fatalf("Install(short) = %v, want ErrWeakCookie without the key", err)
	}
	if err := r.Use(cookieX); !errors.Is(err, ErrUnknownKey) || strings.Contains(err.Error(), cookieX) {
		t.Fatalf("Use(not installed) = %v, want ErrUnknownKey without the key", err)
	}
	if err := r.Remove(cookieOld); !errors.Is(err, ErrPrimaryKey) {
		t.Fatalf("Remove(primary) = %v, want ErrPrimaryKey", err)
	}
	if err := r.Remove(cookieX); err != nil {
		t.Fatalf("Remove(not installed) = %v, want a no-op", err)
	}
	if err := r.Use(cookieNew); err != nil {
		t.Fatal(err)
	}
	if got := r.List(); got[0] != (KeyInfo{ID: KeyID(cookieNew), Primary: true}) {
		t.Fatalf("List after Use = %+v", got)
	}
	if err := r.RemoveID(KeyID(cookieOld)); err != nil {
		t.Fatal(err)
	}
	if got := r.List(); len(got) != 1 {
		t.Fatalf("List after RemoveID = %+v", got)
	}
	if err := r.UseID("0123456789abcdef"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("UseID(unknown) = %v, want ErrUnknownKey", err)
	}
	for i := 0; len(r.List()) < MaxKeys; i++ {
		if err := r.Install(fmt.Sprintf("keyring fill cookie %d 0123456789", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Install(cookieX); !errors.Is(err, ErrKeyringFull) {
		t.Fatalf("Install past MaxKeys = %v, want ErrKeyringFull", err)
	}
	ins := startKernel(t, func(c *Config) { c.Cookie, c.Insecure = "", true })
	if err := ins.Keyring().Install(cookieX); !errors.Is(err, ErrInsecure) || len(ins.Keyring().List()) != 0 {
		t.Fatalf("Install on an insecure kernel = %v, want ErrInsecure", err)
	}
	cfg := testConfig(t)
	cfg.Keys = []string{cookieOld, cookieNew, cookieX, "keyring extra cookie 0123456789"}
	if _, err := New(cfg); !errors.Is(err, ErrKeyringFull) {
		t.Fatalf("New with %d keys = %v, want ErrKeyringFull", len(cfg.Keys)+1, err)
	}
}

// Nodes with different primaries talk as long as each has the other's
// primary installed; removing a key cuts the connections proven with it
// and refuses new ones.
func TestKeyringSharedKey(t *testing.T) {
	checkLeaks(t)
	grace := func(c *Config) { c.KeyRetireGrace = 100 * time.Millisecond; c.ReconnectMax = 100 * time.Millisecond }
	a := startKernel(t, func(c *Config) { grace(c); c.Cookie, c.Keys = cookieOld, []string{cookieNew} })
	b := startKernel(t, func(c *Config) { grace(c); c.Cookie, c.Keys = cookieNew, []string{cookieOld} })
	echo(t, a, "echo")
	echo(t, b, "echo")
	connect(t, a, b)
	connect(t, b, a)
	mustCall(t, a, b)
	mustCall(t, b, a)
	if got, want := keyOf(a, b), KeyID(cookieOld); got != want {
		t.Fatalf("a's link is keyed by %s, want a's primary %s", got, want)
	}
	if got, want := keyOf(b, a), KeyID(cookieNew); got != want {
		t.Fatalf("b's link is keyed by %s, want b's primary %s", got, want)
	}

	// a stops accepting b's primary: b's link to a is cut and cannot come
	// back, a's link to b (proven with a's primary) stays.
	if err := a.Keyring().Remove(cookieNew); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b's link to a cut", func() bool { return !b.Connected(a.Self().ID) })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := b.WaitConnected(ctx, a.Self().ID); err == nil {
		t.Fatal("b reconnected to a with a key a removed")
	}
	mustCall(t, a, b)
	if err := a.Keyring().Install(cookieNew); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b's link to a back", func() bool { return b.Connected(a.Self().ID) })
	mustCall(t, b, a)
}

// A rotation done as operators do it (install the new cookie everywhere,
// make it primary everywhere, remove the old one everywhere) while calls
// and casts flow both ways fails no call and ends with every connection
// keyed by the new cookie.
func TestKeyringRotationUnderTraffic(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, true, func(c *Config) { c.Cookie = cookieOld })
	var casts atomic.Int64
	for _, k := range []*Kernel{a, b} {
		echo(t, k, "echo")
		if err := k.Register("cast", HandlerFunc(func(Message) { casts.Add(1) })); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls atomic.Int64
	errs := make(chan error, 8)
	for _, p := range [][2]*Kernel{{a, b}, {b, a}, {a, b}, {b, a}} {
		wg.Add(1)
		go func(from, to *Kernel) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := from.Call(context.Background(), to.Self(), "echo", []byte("x")); err != nil {
					errs <- err
					return
				}
				if err := from.Cast(to.Self(), "cast", nil); err != nil {
					errs <- err
					return
				}
				calls.Add(1)
			}
		}(p[0], p[1])
	}
	step := func(what string, f func(r *Keyring) error) {
		t.Helper()
		n := calls.Load()
		waitFor(t, "calls before "+what, func() bool { return calls.Load() > n+100 || len(errs) > 0 })
		for _, k := range []*Kernel{a, b} {
			if err := f(k.Keyring()); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
	}
	step("install", func(r *Keyring) error { return r.Install(cookieNew) })
	step("use", func(r *Keyring) error { return r.Use(cookieNew) })
	step("remove", func(r *Keyring) error { return r.Remove(cookieOld) })
	newID := KeyID(cookieNew)
	waitFor(t, "links keyed by the new cookie", func() bool {
		return (keyOf(a, b) == newID && keyOf(b, a) == newID) || len(errs) > 0
	})
	n := calls.Load()
	waitFor(t, "calls after the rotation", func() bool { return calls.Load() > n+100 || len(errs) > 0 })
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("call or cast failed during the rotation: %v", err)
	}
	waitFor(t, "old connections closed", func() bool {
		return a.Stats().ActiveConnections == 2 && b.Stats().ActiveConnections == 2
	})
	for _, k := range []*Kernel{a, b} {
		if s := k.Stats(); s.CallsLost != 0 || s.QueueDrops != 0 {
			t.Errorf("%s: %d calls lost, %d queue drops", k.Self().ID, s.CallsLost, s.QueueDrops)
		}
	}
	t.Logf("%d calls and casts each during the rotation", calls.Load())
}

// A node of the next release, offering [current, next], talks to nodes of
// this one (at the current version); a node that dropped the current
// version is refused by them with an error naming both ranges, and still
// talks to the next release.
func TestProtocolVersionRange(t *testing.T) {
	checkLeaks(t)
	cur := uint64(wire.Version)
	versions := func(lo, hi uint64) func(*Kernel) { return func(k *Kernel) { k.versions = [2]uint64{lo, hi} } }
	start := func(set func(*Kernel)) *Kernel {
		k, err := New(testConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		if set != nil {
			set(k)
		}
		if err := k.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { k.Close() })
		echo(t, k, "echo")
		return k
	}
	old := start(nil)
	next := start(versions(cur, cur+1))
	newest := start(versions(cur+1, cur+1))
	connect(t, old, next)
	connect(t, next, old)
	mustCall(t, old, next)
	mustCall(t, next, old)
	connect(t, next, newest)
	mustCall(t, next, newest)

	if err := old.Connect(newest.Self()); err != nil {
		t.Fatal(err)
	}
	err := old.WaitConnected(ctxT(t), newest.Self().ID)
	want := fmt.Sprintf("versions [%d, %d], this node [%d, %d]", cur+1, cur+1, cur, cur)
	if !errors.Is(err, ErrProtocolVersion) || !strings.Contains(err.Error(), want) {
		t.Fatalf("old node dialing the newest: %v, want ErrProtocolVersion naming %q", err, want)
	}
	// The other way round, the old node is the one that accepts and
	// refuses: the newest node learns why.
	if err := newest.Connect(old.Self()); err != nil {
		t.Fatal(err)
	}
	if err := newest.WaitConnected(ctxT(t), old.Self().ID); !errors.Is(err, ErrProtocolVersion) {
		t.Fatalf("newest node dialing the old: %v, want ErrProtocolVersion", err)
	}
	if _, err := newest.Call(ctxT(t), old.Self(), "echo", []byte("x")); err == nil {
		t.Fatal("a call across incompatible versions succeeded")
	}
}

// Identify learns, authenticated, which node listens at an address; a
// node with another cookie or this node's own address is refused.
func TestIdentify(t *testing.T) {
	checkLeaks(t)
	a, b := startKernel(t, nil), startKernel(t, nil)
	got, err := a.Identify(ctxT(t), b.Addr().String())
	if err != nil || got != b.Self() {
		t.Fatalf("Identify = %+v, %v; want %+v", got, err, b.Self())
	}
	other := startKernel(t, func(c *Config) { c.Cookie = cookieX })
	if got, err := a.Identify(ctxT(t), other.Addr().String()); err == nil {
		t.Fatalf("Identify of a node with another cookie = %+v", got)
	}
	if _, err := a.Identify(ctxT(t), a.Addr().String()); err == nil {
		t.Fatal("Identify of this node's own address succeeded")
	}
	unstarted, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unstarted.Identify(ctxT(t), b.Addr().String()); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Identify before Start = %v, want ErrNotStarted", err)
	}
}

// Changed wakes at each change and DeriveKeys follows the keys, primary
// first, each what DeriveKey gives under that key.
func TestKeyringChangedDeriveKeys(t *testing.T) {
	a := startKernel(t, func(c *Config) { c.Cookie = cookieOld })
	b := startKernel(t, func(c *Config) { c.Cookie = cookieNew })
	r := a.Keyring()
	ch := r.Changed()
	if err := r.Install(cookieOld); err != nil { // no change
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("Changed fired without a change")
	default:
	}
	if err := r.Install(cookieNew); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("Changed did not fire on Install")
	}
	got := r.DeriveKeys("purpose")
	if len(got) != 2 || !bytes.Equal(got[0], a.DeriveKey("purpose")) || !bytes.Equal(got[1], b.DeriveKey("purpose")) {
		t.Fatalf("DeriveKeys = %x", got)
	}
	ch = r.Changed()
	if err := r.Use(cookieNew); err != nil {
		t.Fatal(err)
	}
	<-ch
	if got := r.DeriveKeys("purpose"); !bytes.Equal(got[0], b.DeriveKey("purpose")) || !bytes.Equal(a.DeriveKey("purpose"), got[0]) {
		t.Fatal("after Use, DeriveKeys and DeriveKey do not follow the new primary")
	}
}

// A cookie sealed by a node opens on a node sharing any of its keys and
// on no other; an altered seal does not open.
func TestInstallSealed(t *testing.T) {
	a := startKernel(t, func(c *Config) { c.Cookie = cookieOld })
	b := startKernel(t, func(c *Config) { c.Cookie, c.Keys = cookieNew, []string{cookieOld} })
	stranger := startKernel(t, func(c *Config) { c.Cookie = cookieX })
	sealed, err := a.SealCookie(cookieX)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(cookieX)) {
		t.Fatal("the sealed cookie shows the cookie")
	}
	if _, err := stranger.Keyring().InstallSealed(append([]byte(nil), sealed...)); err != nil {
		// stranger has cookieX but not cookieOld: it cannot open it.
		if !errors.Is(err, ErrSealed) {
			t.Fatalf("stranger: %v, want ErrSealed", err)
		}
	} else {
		t.Fatal("a node without the sealing key opened the cookie")
	}
	bad := append([]byte(nil), sealed...)
	bad[len(bad)-1] ^= 1
	if _, err := b.Keyring().InstallSealed(bad); !errors.Is(err, ErrSealed) {
		t.Fatalf("altered seal: %v, want ErrSealed", err)
	}
	if _, err := b.Keyring().InstallSealed(make([]byte, MaxSealedCookie+1)); !errors.Is(err, ErrSealed) {
		t.Fatalf("oversized seal: %v, want ErrSealed", err)
	}
	id, err := b.Keyring().InstallSealed(sealed) // b opens it with its second key
	if err != nil || id != KeyID(cookieX) {
		t.Fatalf("InstallSealed = %q, %v; want %s", id, err, KeyID(cookieX))
	}
	if got := b.Keyring().List(); len(got) != 3 || got[2].ID != id {
		t.Fatalf("List = %+v", got)
	}
	ins := startKernel(t, func(c *Config) { c.Cookie, c.Insecure = "", true })
	if _, err := ins.SealCookie(cookieX); !errors.Is(err, ErrInsecure) {
		t.Fatalf("SealCookie without a key: %v", err)
	}
}
