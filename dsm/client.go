package dsm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/notp-go/notp/dsm/internal/wire"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/replicated"
	"github.com/notp-go/notp/internal/replicated/payload"
	"github.com/notp-go/notp/kernel"
)

// Create creates semaphore id with limit n on its owner. Creating it again
// with the same n succeeds; with another n the error is a
// kernel.RemoteError with CodeExists ("Semaphore '<id>' already exist
// with n equal to <n>.").
func (s *DSM) Create(ctx context.Context, id string, n int) error {
	if n < 1 || n > s.cfg.MaxSize {
		return fmt.Errorf("%w: n %d not in [1, %d]", ErrInvalidArgument, n, s.cfg.MaxSize)
	}
	_, err := s.request(ctx, wire.Create, request{ID: id, N: n})
	return err
}

// Read returns semaphore id's limit and holder count; a missing one gives
// CodeNotFound ("Semaphore '<id>' does not exist.").
func (s *DSM) Read(ctx context.Context, id string) (Info, error) {
	rep, err := s.request(ctx, wire.Read, request{ID: id})
	if err != nil {
		return Info{}, err
	}
	return Info{N: rep.N, Active: rep.Active}, nil
}

// Destroy deletes semaphore id and its holders; a missing one is no
// error.
func (s *DSM) Destroy(ctx context.Context, id string) error {
	_, err := s.request(ctx, wire.Destroy, request{ID: id})
	return err
}

// Post takes a place in semaphore id for holder, for ttl. A full
// semaphore is tried again after a random wait in [MinWait, MaxWait) until
// Config.Retries or ctx run out (a *PostError wrapping
// ErrRetriesExhausted); an owner's error (CodeNotFound, say) returns at
// once. A holder already in is granted again without a new TTL. A Post
// that ends without the owner's answer (ctx ended, connection lost) casts
// a Close, since the owner may have granted the place; a caller that gets
// such an error and must be sure should Close too.
func (s *DSM) Post(ctx context.Context, id, holder string, ttl time.Duration) (err error) {
	if err := payload.ValidName("holder", holder); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if ttl < time.Millisecond || ttl > MaxTTL {
		return fmt.Errorf("%w: ttl %v not in [1ms, %v]", ErrInvalidArgument, ttl, MaxTTL)
	}
	defer s.countPost(&err)
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	for attempt := 1; ; attempt++ {
		start := s.cfg.Now()
		rep, err := s.request(ctx, wire.Post, request{ID: id, Holder: holder, Timeout: ttl.Milliseconds()})
		if err != nil {
			var re *kernel.RemoteError
			if !errors.As(err, &re) {
				// No answer (ctx ended, connection lost): the owner may
				// have granted the place, so give it back.
				_ = s.CloseAsync(id, holder)
			}
			return err
		}
		if rep.OK && s.cfg.Now().Sub(start) < ttl {
			return nil
		}
		last := fmt.Errorf("dsm: semaphore %q is full", id)
		if rep.OK {
			last = fmt.Errorf("dsm: post to %q took longer than its %v ttl", id, ttl)
			_ = s.CloseAsync(id, holder)
		}
		if s.cfg.Retries == NoRetries || (s.cfg.Retries > 0 && attempt > s.cfg.Retries) {
			return &PostError{ID: id, Holder: holder, Attempts: attempt, Last: last}
		}
		if err := s.sleep(ctx); err != nil {
			return fmt.Errorf("dsm: post %q: %w after %d attempts (last: %w)", id, err, attempt, last)
		}
	}
}

// Close gives up holder's place in semaphore id; giving up a place not
// held is no error (notp ignores the ok value), a missing semaphore is
// CodeNotFound.
func (s *DSM) Close(ctx context.Context, id, holder string) error {
	if err := payload.ValidName("holder", holder); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	_, err := s.request(ctx, wire.Close, request{ID: id, Holder: holder})
	if err == nil {
		s.stats.closes.Add(1)
	}
	return err
}

// CloseAsync sends Close to the owner without waiting (notp's
// closeAsync); a cast that reaches a node that no longer owns id is lost,
// and the holder's TTL releases it.
func (s *DSM) CloseAsync(id, holder string) error {
	if err := s.running(); err != nil {
		return err
	}
	if err := payload.ValidArgs(ErrInvalidArgument, id, holder); err != nil {
		return err
	}
	o, ok := s.ring.owner(id)
	if !ok {
		return errors.New("dsm: the ring has no nodes")
	}
	if err := s.srv.Cast(genserver.Target{Name: s.cfg.Name, Node: o}, wire.Close, encode(request{ID: id, Holder: holder})); err != nil {
		return fmt.Errorf("dsm: close %q: %w", id, err)
	}
	s.stats.closes.Add(1)
	return nil
}

// countPost counts a Post's result; deferred by Post once its arguments
// passed.
func (s *DSM) countPost(err *error) {
	var pe *PostError
	switch {
	case *err == nil:
		s.stats.postsOK.Add(1)
	case errors.As(*err, &pe):
		s.stats.postsFull.Add(1)
	default:
		s.stats.postsFailed.Add(1)
	}
}

// opCtx applies Config.Timeout to a ctx without a deadline.
func (s *DSM) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return replicated.WithTimeout(ctx, s.cfg.Timeout)
}

// sleep waits a random time in [MinWait, MaxWait) before a retry, or
// until ctx ends.
func (s *DSM) sleep(ctx context.Context) error {
	return s.jitter.Sleep(ctx, s.cfg.MinWait, s.cfg.MaxWait)
}

// retryable reports an owner's answer that only says ownership is moving.
func retryable(err error) bool {
	return errors.Is(err, &kernel.RemoteError{Code: CodeNotOwner}) || errors.Is(err, &kernel.RemoteError{Code: CodeMoving})
}

// request sends ev to the owner of req.ID, following ownership while it
// moves (CodeNotOwner, CodeMoving) until ctx ends.
func (s *DSM) request(ctx context.Context, ev string, req request) (reply, error) {
	if err := s.running(); err != nil {
		return reply{}, err
	}
	if err := payload.ValidName("id", req.ID); err != nil {
		return reply{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	data := encode(req)
	for {
		o, ok := s.ring.owner(req.ID)
		if !ok {
			return reply{}, errors.New("dsm: the ring has no nodes")
		}
		if o.ID != s.ring.self().ID && s.ring.down(o.ID) {
			return reply{}, fmt.Errorf("dsm: %s %q: %w: %s", ev, req.ID, ErrOwnerDown, o.ID)
		}
		b, err := s.srv.Call(ctx, genserver.Target{Name: s.cfg.Name, Node: o}, ev, data)
		if err == nil {
			rep, err := wire.DecodeReply(b)
			if err != nil {
				return reply{}, fmt.Errorf("dsm: %s %q from %s: %w", ev, req.ID, o.ID, err)
			}
			return rep, nil
		}
		if !retryable(err) {
			return reply{}, fmt.Errorf("dsm: %s %q: %w", ev, req.ID, err)
		}
		if serr := s.sleep(ctx); serr != nil {
			return reply{}, fmt.Errorf("dsm: %s %q: %w (last: %w)", ev, req.ID, serr, err)
		}
	}
}
