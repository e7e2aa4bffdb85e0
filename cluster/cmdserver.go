package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster/internal/cmdargs"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/vclock"
)

// ringService is what the command server needs of the ring. *gossip.Ring
// satisfies it (asserted in cluster.go); tests use a double to observe the
// exact arguments a command passes (force, weight defaults, self filtering).
type ringService interface {
	RingID() string
	Join(ringID string) error
	Leave(ctx context.Context, force bool) error
	Meet(ctx context.Context, node notp.Node) error
	Insert(ctx context.Context, node notp.Node, weight int, force bool) error
	MInsert(ctx context.Context, nodes []notp.Node, weight int, force bool) error
	Update(ctx context.Context, node notp.Node, weight int, force bool) error
	Remove(ctx context.Context, node notp.Node, force bool) error
	MRemove(ctx context.Context, nodes []notp.Node, force bool) error
	View() gossip.View
	Clock() *vclock.Clock
	RFactor() int
	PFactor() int
}

// notDefined is notp's reply text for get/weight of an unknown id.
func notDefined(id string) string { return fmt.Sprintf("'%s' is not defined in this ring.", id) }

// alreadyInRing is notp's reply text for join while in a ring.
func alreadyInRing(id string) string { return fmt.Sprintf("Node already belongs to ring '%s'", id) }

// commandServer answers the commands of package command. Its handlers run
// on the genserver's actor goroutine, one at a time; every ring operation
// gets a ctx bounded by timeout, so no command holds the actor longer.
type commandServer struct {
	srv          *genserver.Server
	ring         ringService
	self         func() notp.Node
	health       func() map[string]string // ring node ID -> health; nil = unknown
	timeout      time.Duration
	allowMembers bool
	log          *slog.Logger
	// started is when the node was built, for info's uptime.
	started time.Time
	// kernelStats and ringStats feed info's counters; nil = not shown.
	kernelStats func() kernel.Stats
	ringStats   func() gossip.Stats
	// transportStats feeds info's memberlist counters (the ring's
	// transport), shown with the ring's (ringStats set); nil = none.
	transportStats func() gossip.TransportStats
	// eventLog holds the latest ring and health events; nil = none.
	eventLog *eventLog
	// keyring is the kernel's; syncKeys brings memberlist's in step with
	// it. nil = the keys command fails.
	keyring  *kernel.Keyring
	syncKeys func() error
	// ext are the commands contributed through Node.HandleCommand.
	ext extCommands
}

// cmdFunc runs one validated command.
type cmdFunc func(ctx context.Context, a command.Args) command.Reply

// register installs a handler for every command on c.srv.
func (c *commandServer) register() {
	cmds := c.handlers()
	for _, name := range command.Names {
		fn, ok := cmds[name]
		if !ok {
			panic("cluster: no handler for command " + name) // programmer error: command.Names grew
		}
		c.srv.Handle(name, c.wrap(name, fn))
	}
	c.srv.HandleUnknown(func(_ context.Context, r genserver.Request) ([]byte, error) {
		name := r.Event
		if len(name) > 64 {
			cut := 64
			for cut > 0 && !utf8.RuneStart(name[cut]) {
				cut--
			}
			name = name[:cut] + "…"
		}
		c.log.Debug("unknown command", "command", name, "peer", r.From.Node.ID)
		return command.EncodeReply(command.Fail(command.CodeUnknownCommand,
			fmt.Sprintf("Cannot run against unknown command '%s'", name)))
	})
}

// handlers maps every command name to its cmdFunc.
func (c *commandServer) handlers() map[string]cmdFunc {
	return map[string]cmdFunc{
		command.Join:      c.join,
		command.Leave:     c.leave,
		command.Meet:      c.meet,
		command.Insert:    c.insert,
		command.MInsert:   c.minsert,
		command.Update:    c.update,
		command.Remove:    c.remove,
		command.MRemove:   c.mremove,
		command.Inspect:   c.inspect,
		command.Nodes:     c.nodes,
		command.Has:       c.has,
		command.Get:       c.get,
		command.Weight:    c.weight,
		command.Weights:   c.weights,
		command.Ping:      c.ping,
		command.Ownership: c.ownership,
		command.Lookup:    c.lookup,
		command.Info:      c.info,
		command.Events:    c.events,
		command.Keys:      c.keys,
	}
}

// wrap turns a cmdFunc into a genserver handler: it refuses members,
// decodes and validates the payload, bounds the work with the command
// timeout and encodes the reply.
func (c *commandServer) wrap(name string, fn cmdFunc) genserver.HandlerFunc {
	return func(ctx context.Context, r genserver.Request) ([]byte, error) {
		var a command.Args
		rep := c.serve(ctx, name, r, fn, &a)
		if mutating[name] {
			c.logMutation(name, r.From, &a, rep)
		} else if !rep.OK {
			c.log.Debug("command refused or failed", "command", name, "peer", r.From.Node.ID,
				"code", rep.Error.Code, "err", rep.Error.Message)
		}
		return command.EncodeReply(rep)
	}
}

// mutating are the commands that change the ring or this node's place in
// it: each one is logged at Info, refused or not, so an operator can tell
// who changed the cluster.
var mutating = map[string]bool{
	command.Join: true, command.Leave: true, command.Meet: true,
	command.Insert: true, command.MInsert: true, command.Update: true,
	command.Remove: true, command.MRemove: true, command.Keys: true,
}

// logMutation logs a mutating command: who sent it (the node ID the
// sender's hello claimed, which any cookie holder can choose, and the
// address its connection came from), what it asked for and how it ended.
func (c *commandServer) logMutation(name string, from kernel.From, a *command.Args, rep command.Reply) {
	attrs := []any{"command", name, "peer", from.Node.ID, "addr", fmt.Sprint(from.RemoteAddr())}
	switch {
	case a.Node != nil:
		attrs = append(attrs, "target", a.Node.String())
	case len(a.Nodes) > 0:
		attrs = append(attrs, "targets", len(a.Nodes), "first", a.Nodes[0].String())
	case a.ID != "":
		attrs = append(attrs, "target", a.ID)
	}
	if a.Force {
		attrs = append(attrs, "force", true)
	}
	if a.KeyOp != "" { // keys: the operation and fingerprint, never a key
		attrs = append(attrs, "key_op", a.KeyOp)
		if a.KeyID != "" {
			attrs = append(attrs, "key_id", a.KeyID)
		}
	}
	attrs = append(attrs, "ok", rep.OK)
	if !rep.OK {
		attrs = append(attrs, "code", rep.Error.Code, "err", rep.Error.Message)
	}
	c.log.Info("mutating command", attrs...)
}

// serve runs one command; the decoded arguments are left in a.
func (c *commandServer) serve(ctx context.Context, name string, r genserver.Request, fn cmdFunc, a *command.Args) command.Reply {
	from := r.From.Node.ID
	if rep, refused := c.refuseMember(from); refused {
		return rep
	}
	var rep command.Reply
	var ok bool
	if *a, rep, ok = cmdargs.Decode(name, r.Data); !ok {
		return rep
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	c.log.Debug("command", "command", name, "peer", from)
	return fn(ctx, *a)
}

// refuseMember returns the NOT_ALLOWED reply for a caller that is a ring
// member, unless members may run commands.
func (c *commandServer) refuseMember(from string) (command.Reply, bool) {
	if !c.allowMembers && c.isMember(from) {
		return command.Fail(command.CodeNotAllowed,
			fmt.Sprintf("commands from ring members are refused: '%s' is a member of this node's ring", from)), true
	}
	return command.Reply{}, false
}

// isMember reports whether id is this node or a node of its ring.
func (c *commandServer) isMember(id string) bool {
	return id == c.self().ID || c.ring.View().Has(id)
}

// ok builds an ok:true reply; data that cannot be encoded (never the case
// for the shapes below) becomes a FAILED reply rather than a panic.
func ok(data any) command.Reply {
	r, err := command.OK(data)
	if err != nil {
		return command.Fail(command.CodeFailed, err.Error())
	}
	return r
}

// failed turns a ring error into a FAILED reply, with notp's text for the
// errors notp had a text for.
func (c *commandServer) failed(err error) command.Reply {
	if err == nil {
		return ok(nil)
	}
	if errors.Is(err, errAlreadyInRing) {
		return command.Fail(command.CodeFailed, alreadyInRing(c.ring.RingID()))
	}
	return command.Fail(command.CodeFailed, err.Error())
}

// weightOr returns w, or the ring's rfactor for w ≤ 0 (notp's rule).
func (c *commandServer) weightOr(w int) int {
	if w <= 0 {
		return c.ring.RFactor()
	}
	return w
}

// withoutSelf returns nodes without this node, order preserved.
func (c *commandServer) withoutSelf(nodes []notp.Node) []notp.Node {
	self := c.self().ID
	return slices.DeleteFunc(slices.Clone(nodes), func(n notp.Node) bool { return n.ID == self })
}

func (c *commandServer) join(_ context.Context, a command.Args) command.Reply {
	if id := c.ring.RingID(); id != "" {
		return command.Fail(command.CodeFailed, alreadyInRing(id))
	}
	return c.failed(c.ring.Join(a.ID))
}

func (c *commandServer) leave(ctx context.Context, a command.Args) command.Reply {
	return c.failed(c.ring.Leave(ctx, a.Force))
}

func (c *commandServer) meet(ctx context.Context, a command.Args) command.Reply {
	return c.failed(c.ring.Meet(ctx, *a.Node))
}

func (c *commandServer) insert(ctx context.Context, a command.Args) command.Reply {
	return c.failed(c.ring.Insert(ctx, *a.Node, c.weightOr(a.Weight), a.Force))
}

func (c *commandServer) minsert(ctx context.Context, a command.Args) command.Reply {
	nodes := c.withoutSelf(a.Nodes)
	if len(nodes) == 0 {
		return ok(nil) // only self: nothing to insert (notp's "all present" no-op)
	}
	return c.failed(c.ring.MInsert(ctx, nodes, c.weightOr(a.Weight), a.Force))
}

func (c *commandServer) update(ctx context.Context, a command.Args) command.Reply {
	return c.failed(c.ring.Update(ctx, *a.Node, c.weightOr(a.Weight), a.Force))
}

func (c *commandServer) remove(ctx context.Context, a command.Args) command.Reply {
	return c.failed(c.ring.Remove(ctx, *a.Node, a.Force))
}

func (c *commandServer) mremove(ctx context.Context, a command.Args) command.Reply {
	nodes := c.withoutSelf(a.Nodes)
	if len(nodes) == 0 {
		return ok(nil) // only self: nothing to remove
	}
	return c.failed(c.ring.MRemove(ctx, nodes, a.Force))
}

func (c *commandServer) inspect(context.Context, command.Args) command.Reply {
	ring := c.ring.View()
	weights := ring.Weights()
	d := command.InspectData{
		Ring:    c.ring.RingID(),
		RFactor: c.ring.RFactor(),
		PFactor: c.ring.PFactor(),
		Nodes:   []command.WeightedNode{},
		VClock:  c.ring.Clock(),
	}
	for _, n := range ring.Nodes() {
		d.Nodes = append(d.Nodes, command.WeightedNode{ID: n.ID, Host: n.Host, Port: n.Port, Weight: weights[n.ID]})
	}
	return ok(d)
}

func (c *commandServer) nodes(context.Context, command.Args) command.Reply {
	var health map[string]string
	if c.health != nil {
		health = c.health()
	}
	out := []command.NodeHealth{}
	for _, n := range c.ring.View().Nodes() {
		h := health[n.ID]
		if h == "" {
			h = "unknown"
		}
		out = append(out, command.NodeHealth{ID: n.ID, Host: n.Host, Port: n.Port, Health: h})
	}
	return ok(out)
}

func (c *commandServer) has(_ context.Context, a command.Args) command.Reply {
	return ok(c.ring.View().Has(a.ID))
}

func (c *commandServer) get(_ context.Context, a command.Args) command.Reply {
	n, found := c.ring.View().Get(a.ID)
	if !found {
		return command.Fail(command.CodeFailed, notDefined(a.ID))
	}
	return ok(n)
}

func (c *commandServer) weight(_ context.Context, a command.Args) command.Reply {
	w, found := c.ring.View().Weights()[a.ID]
	if !found {
		return command.Fail(command.CodeFailed, notDefined(a.ID))
	}
	return ok(w)
}

func (c *commandServer) weights(context.Context, command.Args) command.Reply {
	return ok(c.ring.View().Weights())
}

func (c *commandServer) ping(context.Context, command.Args) command.Reply {
	return ok("pong")
}

func (c *commandServer) ownership(context.Context, command.Args) command.Reply {
	shares := c.ring.View().Shares()
	out := make([]command.Share, 0, len(shares))
	for id, s := range shares {
		out = append(out, command.Share{ID: id, Share: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return ok(out)
}

func (c *commandServer) lookup(_ context.Context, a command.Args) command.Reply {
	n := a.N
	if n <= 0 {
		n = c.ring.PFactor() + 1
	}
	d := command.LookupData{Key: a.Key, Preference: c.ring.View().PreferenceList([]byte(a.Key), n)}
	if d.Preference == nil {
		d.Preference = []notp.Node{}
	}
	if len(d.Preference) > 0 {
		d.Owner = &d.Preference[0]
	}
	return ok(d)
}

// moduleVersion is the notp module's version in this binary.
func moduleVersion() (version, goVersion string) {
	bi, found := debug.ReadBuildInfo()
	if !found {
		return "unknown", "unknown"
	}
	const mod = "github.com/notp-go/notp"
	if bi.Main.Path == mod {
		return bi.Main.Version, bi.GoVersion
	}
	for _, d := range bi.Deps {
		if d.Path == mod {
			if d.Replace != nil && d.Replace.Version == "" {
				return "(devel)", bi.GoVersion
			}
			return d.Version, bi.GoVersion
		}
	}
	return "(devel)", bi.GoVersion
}

func (c *commandServer) info(context.Context, command.Args) command.Reply {
	ring := c.ring.View()
	up := time.Since(c.started)
	d := command.InfoData{
		Node:          c.self(),
		Uptime:        up.Round(time.Second).String(),
		UptimeSeconds: up.Seconds(),
		Ring:          c.ring.RingID(),
		Nodes:         len(ring.Nodes()),
		Tokens:        ring.Size(),
		RFactor:       c.ring.RFactor(),
		PFactor:       c.ring.PFactor(),
		Health:        map[string]int{},
	}
	d.Version, d.Go = moduleVersion()
	var health map[string]string
	if c.health != nil {
		health = c.health()
	}
	for _, n := range ring.Nodes() {
		h := health[n.ID]
		if h == "" {
			h = "unknown"
		}
		d.Health[h]++
	}
	if c.kernelStats != nil {
		st := c.kernelStats()
		d.Kernel = &st
	}
	if c.ringStats != nil {
		st := c.ringStats()
		if b, err := json.Marshal(st); err == nil {
			d.Gossip = b
		}
		if c.transportStats != nil {
			if b, err := json.Marshal(c.transportStats()); err == nil {
				d.Memberlist = b
			}
		}
	}
	return ok(d)
}
