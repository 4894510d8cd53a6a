package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/clock"
)

// ConsentReplica answers consent checks from memory: it follows the
// centre's consent feed (GET /api/v1/consents/feed, long-poll) and keeps
// every consent of the exchange's clients. The feed answers at once when a
// consent changes and at least every Heartbeat otherwise; the replica
// counts as current for MaxStale after the moment its last complete answer
// was read. When it is not current it does not trust its memory: it asks
// Fallback (the centre, synchronously) and, failing that, the call is
// refused as unchecked. Expiry is judged at each check with Clock.
type ConsentReplica struct {
	URL   string // the centre
	Token string // a system token with the exchange-gateway scope
	HTTP  *http.Client
	Clock clock.Clock
	// Fallback checks while the replica is not current; nil refuses.
	Fallback ConsentChecker
	// MaxStale: answers come from memory only while the replica confirmed
	// it is current within this (default 1 s).
	MaxStale time.Duration
	// Heartbeat is the longest the feed waits before answering (default
	// 300 ms): well under MaxStale, so a quiet feed keeps the replica current.
	Heartbeat time.Duration
	// Retain is how long after its end a consent is kept to answer with
	// the exact refusal (expired, revoked); after it, a check of it is
	// refused as consent.missing and the replica's memory stays bounded by
	// the consents in force (default 30 days).
	Retain time.Duration
	Log    *slog.Logger

	mu       sync.RWMutex
	consents map[uuid.UUID]*replicaConsent
	sweptAt  time.Time
	freshAt  atomic.Int64 // Clock's Unix nanoseconds; 0: never current
	cursor   string
}

type replicaConsent struct {
	subject, client, purpose string
	items                    []string
	status                   string
	validUntil               time.Time
	revision                 int
}

// feedConsent is a consent as the centre's feed sends it.
type feedConsent struct {
	ID             uuid.UUID `json:"id"`
	SubjectIIN     string    `json:"subject_iin"`
	ExchangeClient string    `json:"exchange_client"`
	Items          []string  `json:"items"`
	Purpose        string    `json:"purpose"`
	Status         string    `json:"status"`
	ValidUntil     time.Time `json:"valid_until"`
	Revision       int       `json:"revision"`
}

type feedPage struct {
	Consents     []feedConsent `json:"consents"`
	Cursor       string        `json:"cursor"`
	More         bool          `json:"more"`
	WaitedMillis int64         `json:"waited_ms"`
}

// The refusals, allocated once: a check allocates nothing.
var (
	refusedMissing = &ConsentRefusal{Code: "consent.missing"}
	refusedExpired = &ConsentRefusal{Code: "consent.expired"}
	refusedRevoked = &ConsentRefusal{Code: "consent.revoked"}
)

// ErrReplicaNotCurrent is why a check fails when the replica is not
// current and the centre could not be asked either.
var ErrReplicaNotCurrent = errors.New("the consent replica is not current and the centre did not answer")

func (r *ConsentReplica) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

func (r *ConsentReplica) maxStale() time.Duration {
	if r.MaxStale <= 0 {
		return time.Second
	}
	return r.MaxStale
}

// Current reports whether the replica confirmed it is current within
// MaxStale.
func (r *ConsentReplica) Current() bool {
	f := r.freshAt.Load()
	return f != 0 && r.now().UnixNano()-f <= int64(r.maxStale())
}

// CheckConsent implements [ConsentChecker].
func (r *ConsentReplica) CheckConsent(ctx context.Context, q ConsentQuery) error {
	if !r.Current() {
		if r.Fallback == nil {
			return ErrReplicaNotCurrent
		}
		err := r.Fallback.CheckConsent(ctx, q)
		var refusal *ConsentRefusal
		if err != nil && !errors.As(err, &refusal) {
			return fmt.Errorf("%w: %w", ErrReplicaNotCurrent, err)
		}
		return err
	}
	id, err := uuid.Parse(q.ConsentID)
	if err != nil {
		return refusedMissing
	}
	r.mu.RLock()
	c := r.consents[id]
	r.mu.RUnlock()
	if c == nil || c.subject != q.Subject || c.client != q.Client || c.purpose != strings.TrimSpace(q.Purpose) || !c.covers(q.Service) {
		return refusedMissing
	}
	switch c.status {
	case "revoked":
		return refusedRevoked
	case "granted":
		if !r.now().Before(c.validUntil) {
			return refusedExpired
		}
		return nil
	}
	return refusedMissing
}

// covers reports whether the consent names "service:<service>".
func (c *replicaConsent) covers(service string) bool {
	const prefix = "service:"
	for _, it := range c.items {
		if len(it) == len(prefix)+len(service) && it[:len(prefix)] == prefix && it[len(prefix):] == service {
			return true
		}
	}
	return false
}

// Len is how many consents the replica holds.
func (r *ConsentReplica) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.consents)
}

func (r *ConsentReplica) apply(cs []feedConsent) {
	if len(cs) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.consents == nil {
		r.consents = map[uuid.UUID]*replicaConsent{}
	}
	horizon := r.now().Add(-r.retain())
	for _, f := range cs {
		if old := r.consents[f.ID]; old != nil && old.revision > f.Revision {
			continue // a repeat of an older state
		}
		if f.Status == "pending" || f.Status == "refused" || f.ValidUntil.Before(horizon) {
			delete(r.consents, f.ID) // answered as no consent at all: not kept
			continue
		}
		r.consents[f.ID] = &replicaConsent{subject: f.SubjectIIN, client: f.ExchangeClient, purpose: strings.TrimSpace(f.Purpose),
			items: f.Items, status: f.Status, validUntil: f.ValidUntil, revision: f.Revision}
	}
}

func (r *ConsentReplica) retain() time.Duration {
	if r.Retain > 0 {
		return r.Retain
	}
	return 30 * 24 * time.Hour
}

// sweep forgets the consents that ended more than Retain ago, at most
// once a minute.
func (r *ConsentReplica) sweep() {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.sweptAt) < time.Minute {
		return
	}
	r.sweptAt = now
	horizon := now.Add(-r.retain())
	for id, c := range r.consents {
		if c.validUntil.Before(horizon) {
			delete(r.consents, id)
		}
	}
}

// Sync reads the feed once (waiting up to Heartbeat for a change) and
// applies it; the replica is current when it has read everything. Run
// calls it in a loop; it is not for concurrent use.
func (r *ConsentReplica) Sync(ctx context.Context) error {
	hb := r.Heartbeat
	if hb <= 0 {
		hb = 300 * time.Millisecond
	}
	sent := r.now()
	page, err := r.poll(ctx, r.cursor, hb)
	if err != nil {
		return err
	}
	r.apply(page.Consents)
	r.sweep()
	r.cursor = page.Cursor
	if !page.More {
		r.freshAt.Store(sent.Add(time.Duration(page.WaitedMillis) * time.Millisecond).UnixNano())
	}
	return nil
}

// Run follows the feed until ctx ends.
func (r *ConsentReplica) Run(ctx context.Context) {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	failing := false
	for ctx.Err() == nil {
		err := r.Sync(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				log.Warn("consent feed unreachable; checks go to the centre until it answers", "error", err)
			}
			failing = true
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		case err == nil && failing:
			log.Info("consent feed reachable again")
			failing = false
		}
	}
}

func (r *ConsentReplica) poll(ctx context.Context, cursor string, wait time.Duration) (feedPage, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
	defer cancel()
	q := url.Values{"wait_ms": {strconv.FormatInt(wait.Milliseconds(), 10)}}
	if cursor != "" {
		q.Set("after", cursor)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(r.URL, "/")+"/api/v1/consents/feed?"+q.Encode(), nil)
	if err != nil {
		return feedPage{}, err
	}
	req.Header.Set("Authorization", "Bearer "+r.Token)
	hc := r.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return feedPage{}, fmt.Errorf("consent feed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return feedPage{}, fmt.Errorf("consent feed: centre answered %s: %s", resp.Status, b)
	}
	var page feedPage
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&page); err != nil {
		return feedPage{}, fmt.Errorf("consent feed: %w", err)
	}
	return page, nil
}
