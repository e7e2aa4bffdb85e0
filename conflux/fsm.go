package conflux

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/notp-go/notp/conflux/internal/logentry"
)

// entry is one log command (see package logentry for its layout).
type entry = logentry.Entry

// encodeEntry returns the entry e (its A ignored) with the msgpack of
// action encoded straight after the header, in a buffer of its own (the
// only allocation: the encoder and its scratch buffer are reused).
func encodeEntry[A any](e *entry, action A) ([]byte, error) {
	enc := getEncoder()
	defer enc.release()
	enc.buf.Write(logentry.Append(enc.buf.AvailableBuffer(), e))
	if err := enc.enc.Encode(action); err != nil {
		return nil, err
	}
	return bytes.Clone(enc.buf.Bytes()), nil
}

// marshal returns the msgpack of v, as msgpack.Marshal does, in a buffer
// sized to fit.
func marshal(v any) ([]byte, error) {
	enc := getEncoder()
	defer enc.release()
	if err := enc.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.Clone(enc.buf.Bytes()), nil
}

// An encoder is a msgpack encoder with a scratch buffer, reused through
// encoders: encoding a value into a buffer that grows from empty costs
// several allocations, copying the result out of a warm buffer one.
type encoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := new(encoder)
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}}

// maxPooledEncoder bounds the scratch buffer an encoder keeps: one
// large value must not pin its buffer for the life of the process.
const maxPooledEncoder = 64 << 10

// getEncoder returns an encoder with an empty buffer and the default
// options (those of msgpack.Marshal).
func getEncoder() *encoder {
	e := encoders.Get().(*encoder)
	e.buf.Reset()
	e.enc.Reset(&e.buf)
	return e
}

func (e *encoder) release() {
	if e.buf.Cap() <= maxPooledEncoder {
		encoders.Put(e)
	}
}

// session is the request-ID table's record of a client's latest request.
type session struct {
	Seq    uint64             `msgpack:"s"`
	Index  uint64             `msgpack:"i"`
	Action msgpack.RawMessage `msgpack:"a"`
}

// snapshotData is what a snapshot holds.
type snapshotData struct {
	State    msgpack.RawMessage  `msgpack:"s"`
	Index    uint64              `msgpack:"i"`
	Sessions map[string]*session `msgpack:"c"`
}

// dupResult is what fsm.Apply returns to the leader's future for a
// retried request: the index and action recorded for it, not reduced
// again. An entry applied normally returns nil (no allocation per entry):
// its index is the future's and its action the one proposed.
type dupResult struct {
	index  uint64
	action msgpack.RawMessage
}

// fsm is the replicated state machine. Apply and Restore run on Raft's
// FSM goroutine; readers take mu.
type fsm[S, A any] struct {
	s *Store[S, A]

	mu       sync.Mutex
	state    S
	applied  uint64
	sessions map[string]*session
	notify   chan struct{} // closed at the next apply; nil until someone waits

	// The leader's in-flight actions, in log order (see Store.propose).
	pending []pending[A] // a window on pendArr (see pushPendingLocked)
	pendArr []pending[A]
	prov    S

	subMu  sync.Mutex
	subs   map[int]func(S, A, uint64)
	nextID int

	// Apply's decoder, reader and decoding target, reused from entry to
	// entry (Apply runs on Raft's FSM goroutine only): a decode then
	// allocates only what the action itself holds.
	dec     *msgpack.Decoder
	rd      bytes.Reader
	scratch A
}

type pending[A any] struct {
	p      uint64
	action A
}

func newFSM[S, A any](s *Store[S, A]) *fsm[S, A] {
	return &fsm[S, A]{
		s: s, state: s.cfg.Initial, prov: s.cfg.Initial,
		sessions: map[string]*session{},
		subs:     map[int]func(S, A, uint64){},
		dec:      msgpack.NewDecoder(nil),
	}
}

// Apply reduces one committed entry.
func (f *fsm[S, A]) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		f.advance(l.Index)
		return nil
	}
	var e entry
	if err := logentry.Decode(l.Data, &e); err != nil {
		return f.skip(l.Index, err)
	}
	a, err := f.decodeAction(e.A)
	if err != nil {
		return f.skip(l.Index, err)
	}
	f.mu.Lock()
	if e.C != "" {
		if ss := f.sessions[e.C]; ss != nil && e.Q <= ss.Seq {
			// A retry appended twice: apply it once.
			res := &dupResult{index: ss.Index, action: ss.Action}
			f.advanceLocked(l.Index, e.P)
			f.mu.Unlock()
			return res
		}
		f.remember(e.C, &session{Seq: e.Q, Index: l.Index, Action: bytes.Clone(e.A)})
	}
	f.state = f.s.cfg.Reduce(f.state, a)
	f.advanceLocked(l.Index, e.P)
	state := f.state
	f.mu.Unlock()
	f.publish(state, a, l.Index)
	return nil
}

// ApplyBatch reduces a batch of committed entries, in order
// (raft.BatchingFSM: Raft hands over each batch it commits at once, and
// its own bookkeeping per apply, a timing metric, is then paid once per
// batch instead of once per entry).
func (f *fsm[S, A]) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.Apply(l)
	}
	return out
}

var _ raft.BatchingFSM = (*fsm[int, int])(nil)

// decodeAction decodes an action as msgpack.Unmarshal does, with Apply's
// reused decoder. The target starts from the zero value each time, so
// the action shares no memory with the previous one.
func (f *fsm[S, A]) decodeAction(b []byte) (A, error) {
	var zero A
	f.scratch = zero
	f.rd.Reset(b)
	f.dec.Reset(&f.rd)
	f.dec.UsePreallocateValues(true)
	err := f.dec.Decode(&f.scratch)
	a := f.scratch
	f.scratch = zero
	f.rd.Reset(nil)
	return a, err
}

// skip records an entry that does not decode: it cannot have been made
// by this code's leaders, so it is counted and logged, and the state
// stays as it was (every node skips it alike).
func (f *fsm[S, A]) skip(index uint64, err error) any {
	f.s.log.Error("undecodable log entry skipped", "group", f.s.cfg.Name, "index", index, "err", err)
	f.advance(index)
	return fmt.Errorf("conflux: entry %d does not decode: %w", index, err)
}

func (f *fsm[S, A]) advance(index uint64) {
	f.mu.Lock()
	f.advanceLocked(index, 0)
	f.mu.Unlock()
}

// advanceLocked records index as applied, retires the leader's in-flight
// action p, and wakes WaitApplied. The provisional state is the committed
// state with the remaining in-flight actions applied in proposal order;
// when the oldest one commits that is unchanged, otherwise it is rebuilt.
func (f *fsm[S, A]) advanceLocked(index, p uint64) {
	f.applied = index
	f.advancePendingLocked(p)
	if f.notify != nil {
		close(f.notify)
		f.notify = nil
	}
}

// advancePendingLocked retires the leader's in-flight action p (0 or an
// unknown p: none) and brings the provisional state up to date.
func (f *fsm[S, A]) advancePendingLocked(p uint64) {
	i := -1
	if p != 0 {
		for j := range f.pending {
			if f.pending[j].p == p {
				i = j
				break
			}
		}
	}
	switch {
	case i == 0:
		f.dropPendingLocked(0)
		if len(f.pending) == 0 {
			f.prov = f.state
		}
	case i > 0:
		f.dropPendingLocked(i)
		f.rebaseLocked()
	default:
		f.rebaseLocked()
	}
}

// pushPendingLocked records in-flight action p after the others. The
// in-flight actions are a window on an array (pendArr) that moves up as
// the oldest commit (dropPendingLocked); when it reaches the array's end
// it is moved back to the start if that leaves the array at most half
// full, and into an array twice the size otherwise, so the cost per
// action stays constant however many are in flight, and the array is
// reused.
func (f *fsm[S, A]) pushPendingLocked(p pending[A]) {
	if len(f.pending) == cap(f.pending) && len(f.pending) > 0 && 2*len(f.pending) <= len(f.pendArr) {
		n := copy(f.pendArr, f.pending)
		clear(f.pendArr[n:]) // no reference kept to a moved action's old slot
		f.pending = f.pendArr[:n]
	}
	if len(f.pending) == cap(f.pending) {
		arr := make([]pending[A], max(16, 2*len(f.pending)))
		n := copy(arr, f.pending)
		f.pendArr, f.pending = arr, arr[:n]
	}
	f.pending = append(f.pending, p)
}

// clearPendingLocked forgets every in-flight action.
func (f *fsm[S, A]) clearPendingLocked() {
	clear(f.pending) // the slots outside the window hold nothing
	f.pending = f.pendArr[:0]
}

// dropPendingLocked removes in-flight action i. The oldest (the usual
// case: actions commit in the order they were proposed) is sliced off
// the front of the window, without moving the others; any other is
// removed by shifting the rest down.
func (f *fsm[S, A]) dropPendingLocked(i int) {
	n := len(f.pending) - 1
	if i == 0 {
		f.pending[0] = pending[A]{} // no reference kept to the action
		if n == 0 {
			f.pending = f.pendArr[:0]
		} else {
			f.pending = f.pending[1:]
		}
		return
	}
	copy(f.pending[i:], f.pending[i+1:])
	f.pending[n] = pending[A]{}
	f.pending = f.pending[:n]
}

// rebaseLocked recomputes the provisional state from the committed one.
func (f *fsm[S, A]) rebaseLocked() {
	f.prov = f.state
	for _, p := range f.pending {
		f.prov = f.s.cfg.Reduce(f.prov, p.action)
	}
}

// remember records a client's latest request, forgetting the least
// recently used client beyond MaxSessions. The eviction depends only on
// the log, so every node evicts alike.
func (f *fsm[S, A]) remember(client string, ss *session) {
	f.sessions[client] = ss
	if len(f.sessions) <= f.s.cfg.MaxSessions {
		return
	}
	oldest, at := "", ^uint64(0)
	for c, v := range f.sessions {
		if v.Index < at || (v.Index == at && c < oldest) {
			oldest, at = c, v.Index
		}
	}
	delete(f.sessions, oldest)
}

// session returns the recorded request of client, if any.
func (f *fsm[S, A]) session(client string) (session, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ss := f.sessions[client]
	if ss == nil {
		return session{}, false
	}
	return *ss, true
}

func (f *fsm[S, A]) publish(state S, a A, index uint64) {
	f.subMu.Lock()
	defer f.subMu.Unlock()
	if len(f.subs) == 0 {
		return
	}
	ids := make([]int, 0, len(f.subs))
	for id := range f.subs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		f.subs[id](state, a, index)
	}
}

func (f *fsm[S, A]) subscribe(fn func(S, A, uint64)) func() {
	f.subMu.Lock()
	id := f.nextID
	f.nextID++
	f.subs[id] = fn
	f.subMu.Unlock()
	return func() {
		f.subMu.Lock()
		delete(f.subs, id)
		f.subMu.Unlock()
	}
}

// committed returns the committed state and its index.
func (f *fsm[S, A]) committed() (S, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.applied
}

// waitCh returns a channel closed at the next apply, and the applied index.
func (f *fsm[S, A]) waitCh() (<-chan struct{}, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.notify == nil { // made only when someone waits
		f.notify = make(chan struct{})
	}
	return f.notify, f.applied
}

// Snapshot encodes the state now, on the FSM goroutine, so Persist never
// races a reducer.
func (f *fsm[S, A]) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := msgpack.Marshal(f.state)
	if err != nil {
		return nil, fmt.Errorf("conflux: snapshot: encode state: %w", err)
	}
	b, err := msgpack.Marshal(&snapshotData{State: st, Index: f.applied, Sessions: f.sessions})
	if err != nil {
		return nil, fmt.Errorf("conflux: snapshot: %w", err)
	}
	f.s.emit(Event{Kind: EventSnapshot, Index: f.applied})
	return snapshotBytes(b), nil
}

type snapshotBytes []byte

func (b snapshotBytes) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(b); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (b snapshotBytes) Release() {}

// maxSnapshot bounds a snapshot read by Restore.
const maxSnapshot = 1 << 30

// Restore replaces the state with a snapshot's.
func (f *fsm[S, A]) Restore(r io.ReadCloser) error {
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxSnapshot+1))
	if err != nil {
		return fmt.Errorf("conflux: restore: %w", err)
	}
	if len(b) > maxSnapshot {
		return fmt.Errorf("conflux: restore: snapshot over %d bytes", maxSnapshot)
	}
	var d snapshotData
	if err := msgpack.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("conflux: restore: %w", err)
	}
	var st S
	if err := msgpack.Unmarshal(d.State, &st); err != nil {
		return fmt.Errorf("conflux: restore: decode state: %w", err)
	}
	if d.Sessions == nil {
		d.Sessions = map[string]*session{}
	}
	f.mu.Lock()
	f.state, f.sessions = st, d.Sessions
	f.clearPendingLocked()
	f.advanceLocked(d.Index, 0)
	f.mu.Unlock()
	f.s.emit(Event{Kind: EventRestored, Index: d.Index})
	return nil
}
