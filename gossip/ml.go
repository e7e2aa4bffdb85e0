package gossip

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip/internal/codec"
	"github.com/notp-go/notp/gossip/internal/mltransport"
	"github.com/notp-go/notp/internal/msgpackcheck"
)

// nodeMeta is the memberlist node meta of a ring member.
type nodeMeta struct {
	Ring string `msgpack:"ring"`
	Host string `msgpack:"host"`
	Port int    `msgpack:"port"`
}

// mlDelegate implements memberlist's Delegate, EventDelegate,
// AliveDelegate and MergeDelegate for one memberlist instance, which
// belongs to one ring id. memberlist's interfaces stay out of the API.
type mlDelegate struct {
	r      *Ring
	ringID string
	meta   []byte
}

var (
	_ memberlist.Delegate      = (*mlDelegate)(nil)
	_ memberlist.EventDelegate = (*mlDelegate)(nil)
	_ memberlist.AliveDelegate = (*mlDelegate)(nil)
	_ memberlist.MergeDelegate = (*mlDelegate)(nil)
)

// startMemberlist creates this ring's memberlist over the kernel's port.
// Caller holds opMu.
func (r *Ring) startMemberlist(ringID string) error {
	self := r.k.Self()
	meta, err := msgpack.Marshal(&nodeMeta{Ring: ringID, Host: self.Host, Port: self.Port})
	if err != nil {
		return fmt.Errorf("gossip: encoding node meta: %w", err)
	}
	if len(meta) > memberlist.MetaMaxSize {
		return fmt.Errorf("gossip: node meta of %d bytes exceeds memberlist's %d", len(meta), memberlist.MetaMaxSize)
	}
	tr, err := mltransport.NewWithConfig(r.k, mltransport.Config{
		Logger: r.log.With("component", "mltransport"), ListenPacket: r.cfg.ListenPacket})
	if err != nil {
		return fmt.Errorf("gossip: memberlist transport: %w", err)
	}
	var c memberlist.Config
	if r.cfg.Memberlist != nil {
		c = *r.cfg.Memberlist
	} else {
		c = *memberlist.DefaultLANConfig()
	}
	del := &mlDelegate{r: r, ringID: ringID, meta: meta}
	if c.DeadNodeReclaimTime == 0 {
		// memberlist's 0 is "never": a member restarted at a new address
		// (a rescheduled container) would stay dead under its old one.
		c.DeadNodeReclaimTime = DefaultDeadNodeReclaimTime
	}
	c.Name = r.self
	c.Transport = tr
	kr, err := r.newMLKeyring()
	if err != nil {
		_ = tr.Shutdown()
		return err
	}
	c.SecretKey, c.Keyring = nil, kr
	c.Delegate = del
	c.Events = del
	c.Alive = del
	c.Merge = del
	c.LogOutput = nil
	c.Logger = log.New(mlLogWriter{r.log}, "", 0)
	ml, err := memberlist.Create(&c)
	if err != nil {
		_ = tr.Shutdown()
		return fmt.Errorf("gossip: starting memberlist: %w", err)
	}
	r.ml, r.mlDel = ml, del
	r.mlRef.Store(ml)
	r.trMu.Lock()
	r.tr = tr
	r.trMu.Unlock()
	r.mlKeyring.Store(kr)
	if err := r.SyncKeys(); err != nil { // the kernel's keys may have changed meanwhile
		r.log.Warn("memberlist keyring not in step with the kernel's", "err", err)
	}
	return nil
}

// stopMemberlist leaves (when leave) and shuts memberlist down. Caller
// holds opMu.
func (r *Ring) stopMemberlist(ctx context.Context, leave bool) {
	ml := r.ml
	if ml == nil {
		return
	}
	r.ml, r.mlDel = nil, nil
	r.mlRef.Store(nil)
	r.mlKeyring.Store(nil)
	if leave {
		timeout := r.cfg.CallTimeout
		if d, ok := ctx.Deadline(); ok {
			timeout = max(time.Until(d), time.Millisecond)
		}
		if err := ml.Leave(timeout); err != nil {
			r.log.Debug("memberlist leave", "err", err)
		}
	}
	if err := ml.Shutdown(); err != nil {
		r.log.Debug("memberlist shutdown", "err", err)
	}
	r.trMu.Lock()
	if r.tr != nil {
		r.trDone = r.trDone.Add(r.tr.Stats())
		r.tr = nil
	}
	r.trMu.Unlock()
}

// mlJoin joins memberlist through addrs. Caller holds opMu.
func (r *Ring) mlJoin(ctx context.Context, addrs []string) error {
	if r.ml == nil {
		return ErrNotInRing
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := r.ml.Join(addrs)
	return err
}

// connectAll connects the kernel to every live member (after a load).
func (r *Ring) connectAll() {
	if r.cfg.LazyConnect {
		return
	}
	r.mu.Lock()
	nodes := r.st.liveNodes()
	r.mu.Unlock()
	r.connectEager(nodes)
}

// targetsLockedAll returns every live member other than this node.
func (r *Ring) targetsLockedAll() []notp.Node {
	var out []notp.Node
	for _, e := range r.st.entries {
		if !e.Removed && e.Node.ID != r.self {
			out = append(out, e.Node)
		}
	}
	return out
}

// NodeMeta implements memberlist.Delegate.
func (d *mlDelegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		return nil
	}
	return d.meta
}

// NotifyMsg implements memberlist.Delegate; ring messages use the kernel.
func (d *mlDelegate) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate; changes are pushed through
// the kernel instead.
func (d *mlDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate: the full ring state for a
// push/pull exchange.
func (d *mlDelegate) LocalState(join bool) []byte {
	r := d.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ringID != d.ringID {
		return nil
	}
	return r.stateMsgLocked(codec.MsgUpdate, 0)
}

// MergeRemoteState implements memberlist.Delegate: a push/pull exchange
// merges like a received update with round 0 (never a join: memberlist
// joins must not resurrect removed nodes).
func (d *mlDelegate) MergeRemoteState(buf []byte, join bool) {
	d.r.safely("push/pull", func() { d.r.mergeRemoteState(d.ringID, buf) })
}

// checkPeer rejects memberlist peers of another ring.
func (d *mlDelegate) checkPeer(n *memberlist.Node) error {
	var meta nodeMeta
	if err := msgpackcheck.Unmarshal(n.Meta, &meta); err != nil {
		return fmt.Errorf("gossip: node %q: bad meta: %w", n.Name, err)
	}
	if meta.Ring != d.ringID {
		return fmt.Errorf("gossip: node %q is in ring %q, not %q", n.Name, meta.Ring, d.ringID)
	}
	return nil
}

// NotifyAlive implements memberlist.AliveDelegate.
func (d *mlDelegate) NotifyAlive(peer *memberlist.Node) error {
	if peer.Name == d.r.self {
		return nil
	}
	return d.checkPeer(peer)
}

// NotifyMerge implements memberlist.MergeDelegate: different rings never
// merge.
func (d *mlDelegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if p.Name == d.r.self {
			continue
		}
		if err := d.checkPeer(p); err != nil {
			return err
		}
	}
	return nil
}

// NotifyJoin implements memberlist.EventDelegate (called under
// memberlist's node lock: only healthMu and the event bus are taken).
func (d *mlDelegate) NotifyJoin(n *memberlist.Node) { d.setHealth(n.Name, HealthAlive) }

// NotifyLeave implements memberlist.EventDelegate.
func (d *mlDelegate) NotifyLeave(n *memberlist.Node) {
	h := HealthDead
	if n.State == memberlist.StateLeft {
		h = HealthLeft
	}
	d.setHealth(n.Name, h)
}

// NotifyUpdate implements memberlist.EventDelegate (meta changes only).
func (d *mlDelegate) NotifyUpdate(n *memberlist.Node) {}

func (d *mlDelegate) setHealth(id string, h Health) {
	r := d.r
	if id == r.self {
		return
	}
	r.healthMu.Lock()
	old := r.health[id]
	r.health[id] = h
	if h == HealthDead {
		r.deadSince[id] = r.now()
	} else {
		delete(r.deadSince, id)
	}
	if h != HealthDead || old != HealthDead {
		// Alive or left: no retries; newly dead: a fresh backoff.
		delete(r.reconn, id)
	}
	if h == HealthAlive && old == HealthDead {
		r.reviveLocked()
	}
	r.healthMu.Unlock()
	// Calls to a dead or departed member fail at once in the kernel
	// instead of waiting for their deadline; alive lifts that.
	r.k.SetNodeDown(id, h != HealthAlive)
	if old == h {
		return
	}
	node, inRing := r.ring.Load().Get(id)
	if !inRing {
		return
	}
	kind := map[Health]EventKind{HealthAlive: EventAlive, HealthDead: EventDead, HealthLeft: EventMemberLeft}[h]
	if h == HealthAlive {
		r.log.Debug("member health", "peer", id, "health", h.String())
	} else {
		r.log.Info("member health", "peer", id, "health", h.String())
	}
	r.emit(kind, d.ringID, []notp.Node{node})
}

// mlLogWriter sends memberlist's log lines to the ring's logger at debug
// level.
type mlLogWriter struct{ l *slog.Logger }

func (w mlLogWriter) Write(p []byte) (int, error) {
	if w.l.Enabled(context.Background(), slog.LevelDebug) {
		w.l.Debug("memberlist", "msg", string(trimNL(p)))
	}
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

var _ io.Writer = mlLogWriter{}
