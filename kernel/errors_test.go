package kernel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"testing/synctest"
)

// A *RemoteError crosses the wire whole (code, message, fields; found
// inside a wrapped error too) and comes back naming the node that raised
// it; errors.Is matches by non-empty code only.
func TestRemoteErrorOnTheWire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newMemNet().pair(t, nil)
		b.Register("fail", HandlerFunc(func(m Message) {
			re := Errorf("NOT_FOUND", "no %s", m.Data)
			re.Fields = map[string]string{"key": string(m.Data), "shard": "7"}
			b.ReplyError(m.From, fmt.Errorf("lookup: %w", re))
		}))
		_, err := a.Call(context.Background(), b.Self(), "fail", []byte("k1"))
		var re *RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("Call = %v, want a *RemoteError", err)
		}
		want := RemoteError{Code: "NOT_FOUND", Message: "no k1", Fields: map[string]string{"key": "k1", "shard": "7"}, Node: b.Self()}
		if re.Code != want.Code || re.Message != want.Message || !maps.Equal(re.Fields, want.Fields) || re.Node != want.Node {
			t.Fatalf("remote error = %+v, want %+v", *re, want)
		}
		if got, wantMsg := re.Error(), "remote "+b.Self().ID+": NOT_FOUND: no k1"; got != wantMsg {
			t.Fatalf("Error() = %q, want %q", got, wantMsg)
		}
		for _, tc := range []struct {
			target error
			want   bool
		}{
			{&RemoteError{Code: "NOT_FOUND"}, true},
			{&RemoteError{Code: "OTHER"}, false},
			{&RemoteError{}, false}, // an empty code matches nothing
			{errors.New("NOT_FOUND"), false},
		} {
			if got := errors.Is(err, tc.target); got != tc.want {
				t.Errorf("errors.Is(err, %#v) = %v, want %v", tc.target, got, tc.want)
			}
		}
		if (&RemoteError{Message: "m"}).Error() != "remote: m" {
			t.Errorf("Error() without node and code = %q", (&RemoteError{Message: "m"}).Error())
		}
	})
}
