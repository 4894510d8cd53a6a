package consent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/web"
)

// The consent feed lets exchange gateways keep a replica of the consents
// of the exchange's clients (those with an exchange_client) and decide
// checks alone. Every change of a consent row stamps it with its
// transaction (change_tx, xid8) and a sequence number (change_seq): a
// reader walks rows in (change_tx, change_seq) order and its cursor only
// moves past rows whose transaction is older than the oldest one still
// running (the snapshot's xmin), so a transaction that commits late can
// never fall behind the cursor (as internal/outbox's Consume does).
// Rows committed but not yet below that horizon are sent too, at once, and
// again until the cursor passes them: the reader applies a row by
// revision, so a repeat changes nothing, and a revocation reaches it as
// soon as it commits whatever else is running.

// Feed limits.
const (
	FeedMaxWait   = 25 * time.Second // the longest long-poll
	FeedPageLimit = 1000             // rows in one answer
)

// FeedConsent is a consent as the feed sends it: what a gateway needs to
// decide a check. Status is the stored one (pending, granted, refused,
// revoked); expiry is the reader's to judge from ValidUntil.
type FeedConsent struct {
	ID             uuid.UUID `json:"id"`
	SubjectIIN     string    `json:"subject_iin"`
	ExchangeClient string    `json:"exchange_client"`
	Items          []string  `json:"items"`
	Purpose        string    `json:"purpose"`
	Status         Status    `json:"status"`
	ValidUntil     time.Time `json:"valid_until"`
	Revision       int       `json:"revision"`
}

// FeedCursor is where a reader stands: past every row up to (Tx, Seq), and
// it has been sent every row with a sequence number up to Seen.
type FeedCursor struct {
	Tx   uint64
	Seq  int64
	Seen int64
}

// String is the cursor as the API passes it: "tx.seq.seen".
func (c FeedCursor) String() string {
	return strconv.FormatUint(c.Tx, 10) + "." + strconv.FormatInt(c.Seq, 10) + "." + strconv.FormatInt(c.Seen, 10)
}

// ParseFeedCursor reads a cursor; "" is the start.
func ParseFeedCursor(s string) (FeedCursor, error) {
	if s == "" {
		return FeedCursor{}, nil
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return FeedCursor{}, errors.New("cursor: want tx.seq.seen")
	}
	var c FeedCursor
	var err error
	if c.Tx, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return FeedCursor{}, errors.New("cursor: bad transaction")
	}
	if c.Seq, err = strconv.ParseInt(parts[1], 10, 64); err != nil || c.Seq < 0 {
		return FeedCursor{}, errors.New("cursor: bad sequence")
	}
	if c.Seen, err = strconv.ParseInt(parts[2], 10, 64); err != nil || c.Seen < 0 {
		return FeedCursor{}, errors.New("cursor: bad seen sequence")
	}
	return c, nil
}

// FeedPage is one answer of the feed.
type FeedPage struct {
	Consents []FeedConsent `json:"consents"`
	Cursor   string        `json:"cursor"`
	// More says the page was full: ask again at once.
	More bool `json:"more"`
	// WaitedMillis is how long the centre waited before it read the
	// page: the page is current as of the request's start plus that.
	WaitedMillis int64 `json:"waited_ms"`
}

// feedHub wakes waiting feed readers when a consent changes: in-process
// after this node's commits, and through LISTEN consent_feed for the
// other nodes' ([Ledger.ListenFeed]).
type feedHub struct {
	mu sync.Mutex
	ch chan struct{}
}

func (h *feedHub) changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ch == nil {
		h.ch = make(chan struct{})
	}
	return h.ch
}

func (h *feedHub) wake() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ch != nil {
		close(h.ch)
		h.ch = nil
	}
}

// ListenFeed wakes this node's feed readers when another node changes a
// consent (PostgreSQL LISTEN consent_feed), until ctx ends. Run it in its
// own goroutine on every node that serves the API.
func (l *Ledger) ListenFeed(ctx context.Context) {
	for ctx.Err() == nil {
		err := l.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("consent feed: listening for changes failed; retrying", "error", err)
		l.feed.wake() // readers look again rather than miss a change
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (l *Ledger) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN consent_feed"); err != nil {
		return err
	}
	l.feed.wake() // changes made before LISTEN took effect
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		l.feed.wake()
	}
}

// Feed returns the consents of exchange clients changed after cur, in
// commit-safe order, waiting up to wait for a change when there is none (a
// reader's first call, from the zero cursor, asks with no wait: the
// current set, paged).
func (l *Ledger) Feed(ctx context.Context, cur FeedCursor, wait time.Duration, limit int) (FeedPage, error) {
	if limit <= 0 || limit > FeedPageLimit {
		limit = FeedPageLimit
	}
	started := time.Now()
	deadline := time.NewTimer(min(wait, FeedMaxWait))
	defer deadline.Stop()
	for {
		changed := l.feed.changed() // before the read: a change after it wakes us
		page, fresh, err := l.feedPage(ctx, cur, limit)
		if err != nil {
			return FeedPage{}, err
		}
		if fresh || wait <= 0 {
			page.WaitedMillis = time.Since(started).Milliseconds()
			return page, nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			wait = 0 // read once more and answer, changed or not
		case <-ctx.Done():
			return FeedPage{}, ctx.Err()
		}
	}
}

// feedPage reads one page after cur; fresh says it holds a row the reader
// has not been sent or that moves its cursor.
func (l *Ledger) feedPage(ctx context.Context, cur FeedCursor, limit int) (FeedPage, bool, error) {
	rows, err := l.pool.Query(ctx, `WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon)
		SELECT id, subject_iin, exchange_client, items, purpose, status, valid_until, revision,
			change_tx::text, change_seq, change_tx < h.horizon
		FROM consent, h
		WHERE exchange_client IS NOT NULL AND (change_tx, change_seq) > ($1::text::xid8, $2)
		ORDER BY change_tx, change_seq LIMIT $3`, strconv.FormatUint(cur.Tx, 10), cur.Seq, limit)
	if err != nil {
		return FeedPage{}, false, fmt.Errorf("consent feed: %w", err)
	}
	defer rows.Close()
	page := FeedPage{Consents: []FeedConsent{}}
	next, fresh := cur, false
	for rows.Next() {
		var c FeedConsent
		var status, tx string
		var seq int64
		var settled bool
		if err := rows.Scan(&c.ID, &c.SubjectIIN, &c.ExchangeClient, &c.Items, &c.Purpose, &status, &c.ValidUntil, &c.Revision,
			&tx, &seq, &settled); err != nil {
			return FeedPage{}, false, fmt.Errorf("consent feed: %w", err)
		}
		c.Status = Status(status)
		page.Consents = append(page.Consents, c)
		if settled {
			// Ordered by transaction, settled rows come first.
			next.Tx, _ = strconv.ParseUint(tx, 10, 64)
			next.Seq = seq
			fresh = true
		}
		if seq > cur.Seen {
			fresh = true
		}
		next.Seen = max(next.Seen, seq)
	}
	if err := rows.Err(); err != nil {
		return FeedPage{}, false, fmt.Errorf("consent feed: %w", err)
	}
	page.More = len(page.Consents) == limit
	page.Cursor = next.String()
	return page, fresh, nil
}

// handleFeed serves GET /api/v1/consents/feed?after=<cursor>&wait_ms=<0..25000>&limit=<1..1000>
// to exchange gateways (systems with the exchange-gateway scope).
func (l *Ledger) handleFeed(w http.ResponseWriter, r *http.Request) error {
	p, err := identity.Require(r)
	if err != nil {
		return err
	}
	if !p.HasScope(identity.ScopeExchangeGateway) {
		return apierr.New(apierr.Forbidden)
	}
	q := r.URL.Query()
	var fields []apierr.FieldError
	cur, err := ParseFeedCursor(q.Get("after"))
	if err != nil {
		fields = append(fields, apierr.FieldError{Path: "/after", Code: apierr.FieldFormat})
	}
	wait, limit := time.Duration(0), FeedPageLimit
	if v := q.Get("wait_ms"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > FeedMaxWait {
			fields = append(fields, apierr.FieldError{Path: "/wait_ms", Code: apierr.FieldOutOfRange})
		}
		wait = time.Duration(ms) * time.Millisecond
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > FeedPageLimit {
			fields = append(fields, apierr.FieldError{Path: "/limit", Code: apierr.FieldOutOfRange})
		}
		limit = n
	}
	if len(fields) > 0 {
		return apierr.New(apierr.Validation, fields...)
	}
	if q.Get("after") == "" {
		wait = 0 // a first call: the current set at once
	}
	page, err := l.Feed(r.Context(), cur, wait, limit)
	if err != nil {
		return err
	}
	if len(page.Consents) > 0 {
		// The pages carry people's consents: the trail says which account
		// took how many, and from where (not per person: a gateway's
		// replica is not a use of anyone's data; its uses are reported).
		err := pg.InTx(r.Context(), l.pool, func(tx pgx.Tx) error {
			return audit.Record(r.Context(), tx, audit.Event{At: l.clock.Now(), Actor: p.Actor(), Action: "consent.feed_read",
				Object: fmt.Sprintf("consents:%d after:%s", len(page.Consents), cur), Purpose: "exchange gateway consent replica",
				RequestID: web.RequestID(r.Context())})
		})
		if err != nil {
			return err
		}
	}
	web.WriteJSON(w, http.StatusOK, page)
	return nil
}
