package genserver

import (
	"context"
	"errors"
	"testing"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/kernel"
)

// A kernel delivery that races with Stop and reaches the retired generation
// is refused (counted), never queued where no actor will read it.
func TestLateDeliveryToRetiredRun(t *testing.T) {
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: "late", Host: "127.0.0.1"}, Cookie: "genserver test cookie 0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	s, err := New(k, Config{Name: "late"})
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan struct{}, 1)
	s.Handle("ev", func(context.Context, Request) ([]byte, error) {
		handled <- struct{}{}
		return nil, nil
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	old := s.cur.Load()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old.Handle(kernel.Message{Name: "late", From: kernel.From{Node: k.Self()}, Data: encodeRequest("ev", nil)})
	if st := s.Stats(); st.Stopped != 1 || st.Queued != 0 {
		t.Fatalf("Stopped = %d, Queued = %d; want 1, 0", st.Stopped, st.Queued)
	}
	if len(old.mailbox) != 0 {
		t.Fatal("the retired run queued a message")
	}
	// The new generation still works.
	if err := s.Cast(Target{Name: "late"}, "ev", nil); err != nil {
		t.Fatal(err)
	}
	<-handled
}

// A panicking Config.Decode is a handler panic: the caller gets
// CodeHandlerPanic and the actor goes on.
func TestDecodePanic(t *testing.T) {
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: "dp", Host: "127.0.0.1"}, Cookie: "genserver test cookie 0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	s, err := New(k, Config{Name: "dp", Decode: func(event string, data []byte) (any, error) {
		if len(data) == 0 {
			panic("decoder bug")
		}
		return nil, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("ev", func(_ context.Context, r Request) ([]byte, error) { return r.Data, nil })
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Call(context.Background(), Target{Name: "dp"}, "ev", nil)
	if !errors.Is(err, &kernel.RemoteError{Code: kernel.CodeHandlerPanic}) {
		t.Fatalf("Call = %v, want %s", err, kernel.CodeHandlerPanic)
	}
	if got, err := s.Call(context.Background(), Target{Name: "dp"}, "ev", []byte("ok")); err != nil || string(got) != "ok" {
		t.Fatalf("Call after decoder panic = %q, %v", got, err)
	}
	if st := s.Stats(); st.Panics != 1 {
		t.Fatalf("Panics = %d", st.Panics)
	}
}
