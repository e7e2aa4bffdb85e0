package genserver

import "sync/atomic"

// Stats counts a server's messages since New, across restarts.
type Stats struct {
	// Received counts deliveries from the kernel, whatever became of them.
	Received uint64
	// Handled counts messages passed to a handler.
	Handled uint64
	// Malformed counts payloads that were not a valid {event, data} map.
	Malformed uint64
	// BadRequests counts messages Config.Decode rejected.
	BadRequests uint64
	// UnknownEvents counts messages whose event had no handler.
	UnknownEvents uint64
	// Paused counts messages dropped because the server was paused.
	Paused uint64
	// Overloaded counts messages rejected because the mailbox was full.
	Overloaded uint64
	// Stopped counts messages rejected because the server was stopping.
	Stopped uint64
	// Panics counts handler (or decoder) panics.
	Panics uint64
	// EventsDropped counts lifecycle events lost on full subscriber channels.
	EventsDropped uint64
	// Queued is the number of messages waiting in the mailbox now.
	Queued int
}

type counters struct {
	received, handled, malformed, badRequests, unknown atomic.Uint64
	paused, overloaded, stopped, panics, eventsDropped atomic.Uint64
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	st := Stats{
		Received:      c.received.Load(),
		Handled:       c.handled.Load(),
		Malformed:     c.malformed.Load(),
		BadRequests:   c.badRequests.Load(),
		UnknownEvents: c.unknown.Load(),
		Paused:        c.paused.Load(),
		Overloaded:    c.overloaded.Load(),
		Stopped:       c.stopped.Load(),
		Panics:        c.panics.Load(),
		EventsDropped: c.eventsDropped.Load(),
	}
	if r := s.cur.Load(); r != nil {
		st.Queued = len(r.mailbox)
	}
	return st
}
