package conflux

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// Each Perform error counts under one outcome; a Perform that ran out of
// time with no leader counts as no_leader, whatever refusal it saw last.
func TestPerformOutcome(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{ErrUnknownOutcome, "unknown_outcome"},
		{ErrOverloaded, "overloaded"},
		{&NotLeaderError{}, "not_leader"},
		{ErrNoLeader, "no_leader"},
		{fmt.Errorf("%w (last: %w)", ErrNoLeader, ErrOverloaded), "no_leader"},
		{fmt.Errorf("%w (last: %w)", ErrNoLeader, &NotLeaderError{}), "no_leader"},
		{ErrClosed, "closed"},
		{ErrUnknownMethod, "refused"},
		{context.DeadlineExceeded, "timeout"},
		{errors.New("method failed"), "method_error"},
	} {
		if got := performOutcomes[outcome(c.err)]; got != c.want {
			t.Errorf("outcome(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}
