package gateway

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// replayCache remembers (client, message id) for the replay window. A
// message whose signed time is outside the window around now is refused by
// its time; inside it, by this memory, which a restart reloads from the
// message log.
//
// A message with time t can be replayed until t+window, and t may lie up to
// window ahead of its arrival, so an id must be remembered for 2×window.
// Memory is kept in three generations of one window each, rotated in O(1):
// an id lives between 2 and 3 windows. Keys are 16-byte hashes.
type replayCache struct {
	window  time.Duration
	mu      sync.Mutex
	gens    [3]map[[16]byte]struct{}
	rotated time.Time
}

func newReplayCache(window time.Duration) *replayCache {
	c := &replayCache{window: window}
	for i := range c.gens {
		c.gens[i] = map[[16]byte]struct{}{}
	}
	return c
}

func replayKey(client, id string) [16]byte {
	h := sha256.Sum256([]byte(client + "\x00" + id))
	return [16]byte(h[:16])
}

// fresh records the message and reports whether it was new and its time
// within the window around now.
func (c *replayCache) fresh(client, id string, at, now time.Time) bool {
	if at.Before(now.Add(-c.window)) || at.After(now.Add(c.window)) {
		return false
	}
	key := replayKey(client, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rotated.IsZero() {
		c.rotated = now
	}
	for now.Sub(c.rotated) >= c.window {
		c.gens[2], c.gens[1], c.gens[0] = c.gens[1], c.gens[0], map[[16]byte]struct{}{}
		c.rotated = c.rotated.Add(c.window)
		if now.Sub(c.rotated) >= 3*c.window { // long idle: nothing left to keep
			c.rotated = now
		}
	}
	for _, g := range c.gens {
		if _, seen := g[key]; seen {
			return false
		}
	}
	c.gens[0][key] = struct{}{}
	return true
}

func (c *replayCache) load(ctx context.Context, pool *pgxpool.Pool, now time.Time) error {
	rows, err := pool.Query(ctx, `SELECT client, message_id FROM gateway_msglog WHERE direction = 'in' AND at_us > $1`,
		now.Add(-2*c.window).UnixMicro())
	if err != nil {
		return fmt.Errorf("load replay memory: %w", err)
	}
	defer rows.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotated = now
	for rows.Next() {
		var client, id string
		if err := rows.Scan(&client, &id); err != nil {
			return err
		}
		c.gens[0][replayKey(client, id)] = struct{}{}
	}
	return rows.Err()
}
