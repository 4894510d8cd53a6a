package gateway

import (
	"testing"
	"time"
)

func TestReplayCache(t *testing.T) {
	w := time.Minute
	c := newReplayCache(w)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if !c.fresh("c", "1", t0, t0) || c.fresh("c", "1", t0, t0.Add(time.Second)) {
		t.Fatal("a message id is accepted twice")
	}
	if !c.fresh("other", "1", t0, t0) {
		t.Fatal("ids are per client")
	}
	if c.fresh("c", "old", t0.Add(-w-time.Second), t0) || c.fresh("c", "future", t0.Add(w+time.Second), t0) {
		t.Fatal("a message outside the window is accepted")
	}
	// A message stamped a window ahead stays refused until its time has
	// left the window, however the generations rotate.
	ahead := t0.Add(w)
	if !c.fresh("c", "ahead", ahead, t0) {
		t.Fatal("message within the window refused")
	}
	for now := t0; now.Before(ahead.Add(w)); now = now.Add(7 * time.Second) {
		if c.fresh("c", "ahead", ahead, now) {
			t.Fatalf("replay accepted at %s", now.Sub(t0))
		}
	}
}
