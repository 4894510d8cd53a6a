package notify

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/clock"
)

// Message is one message as a Sender gets it.
type Message struct {
	ID       uuid.UUID // stable across attempts: a provider's idempotency key
	Channel  string
	Address  string // the phone (+7XXXXXXXXXX) or e-mail address
	ToIIN    string // the citizen, for providers that address by IIN (1414's mobile citizens database)
	Language string // of Subject and Body: "kk", "ru", "en", or "kk,ru"
	Subject  string // e-mail only
	Body     string
	Attempt  int // 1 for the first send
}

// LogValue keeps the address and the IIN out of logs.
func (m Message) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", m.ID.String()), slog.String("channel", m.Channel), slog.Int("attempt", m.Attempt))
}

// backoff is the wait after the attempt-th failed send.
func (c Config) backoff(attempt int) time.Duration {
	d := c.RetryBase
	for i := 1; i < attempt && d < c.RetryMax; i++ {
		d *= 2
	}
	return min(d, c.RetryMax)
}

// SendDue sends the queued messages that are due, up to Batch, and returns
// how many it took (sent or not). Messages taken by another node are
// skipped.
func (n *Notifier) SendDue(ctx context.Context) (int, error) {
	channels := slices.Sorted(maps.Keys(n.senders))
	if len(channels) == 0 {
		return 0, nil
	}
	now := n.clock.Now()
	// Lease in a short transaction; send outside it, so no transaction
	// stays open during a provider's call (an open one would hold back
	// every outbox consumer).
	rows, err := n.pool.Query(ctx, `UPDATE notify_message m SET attempts = attempts + 1, next_attempt_at = $3
		WHERE id IN (SELECT id FROM notify_message WHERE status = 'queued' AND channel = ANY($1) AND next_attempt_at <= $2
			ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
		RETURNING id, channel, address, coalesce(to_iin, ''), language, subject, body, attempts`,
		channels, now, now.Add(2*n.cfg.SendTimeout), n.cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("take due messages: %w", err)
	}
	due, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Message])
	if err != nil {
		return 0, fmt.Errorf("take due messages: %w", err)
	}
	for _, m := range due {
		sendCtx, cancel := context.WithTimeout(ctx, n.cfg.SendTimeout)
		sendErr := n.senders[m.Channel].Send(sendCtx, m)
		cancel()
		if err := n.settle(ctx, m, sendErr); err != nil {
			return len(due), err
		}
	}
	return len(due), nil
}

// settle records the outcome of one send.
func (n *Notifier) settle(ctx context.Context, m Message, sendErr error) error {
	now := n.clock.Now()
	if sendErr == nil {
		_, err := n.pool.Exec(ctx, `UPDATE notify_message SET status = 'sent', sent_at = $3, next_attempt_at = NULL, last_error = NULL
			WHERE id = $1 AND attempts = $2 AND status = 'queued'`, m.ID, m.Attempt, now)
		if err != nil {
			return fmt.Errorf("record sent message: %w", err)
		}
		n.counted.WithLabelValues(m.Channel, "sent").Inc()
		return nil
	}
	// The provider's error may quote the address: it stays in the table,
	// which holds the address anyway, and is masked in the log.
	cause := sendErr.Error()
	masked := cause
	if m.Address != "" {
		masked = strings.ReplaceAll(masked, m.Address, "[address]")
	}
	if m.ToIIN != "" {
		masked = strings.ReplaceAll(masked, m.ToIIN, "[iin]")
	}
	if m.Attempt >= n.cfg.MaxAttempts {
		n.log.Error("notify: message failed after its last attempt", "message", m, "error", masked)
		_, err := n.pool.Exec(ctx, `UPDATE notify_message SET status = 'failed', next_attempt_at = NULL, last_error = $3
			WHERE id = $1 AND attempts = $2 AND status = 'queued'`, m.ID, m.Attempt, cause)
		if err != nil {
			return fmt.Errorf("record failed message: %w", err)
		}
		n.counted.WithLabelValues(m.Channel, "failed").Inc()
		return nil
	}
	next := now.Add(n.cfg.backoff(m.Attempt))
	n.log.Warn("notify: send failed; will retry", "message", m, "error", masked, "next_attempt_at", next)
	_, err := n.pool.Exec(ctx, `UPDATE notify_message SET next_attempt_at = $3, last_error = $4
		WHERE id = $1 AND attempts = $2 AND status = 'queued'`, m.ID, m.Attempt, next, cause)
	if err != nil {
		return fmt.Errorf("record failed send: %w", err)
	}
	n.counted.WithLabelValues(m.Channel, "retried").Inc()
	return nil
}

// DevSender is the development adapter of a channel: it delivers into
// table notify_dev_outbox, where `ortaq notify outbox` and tests read what
// was sent. A second send of one message is dropped there, as a provider's
// idempotency key would.
type DevSender struct {
	pool    *pgxpool.Pool
	clock   clock.Clock
	channel string
}

// NewDevSender returns the development adapter of channel (SMS or Email).
func NewDevSender(pool *pgxpool.Pool, clk clock.Clock, channel string) *DevSender {
	return &DevSender{pool: pool, clock: clk, channel: channel}
}

// Channel is the adapter's channel.
func (d *DevSender) Channel() string { return d.channel }

// Send writes m into the dev outbox.
func (d *DevSender) Send(ctx context.Context, m Message) error {
	if m.Address == "" {
		return fmt.Errorf("dev %s: message %s has no address", d.channel, m.ID)
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO notify_dev_outbox (message_id, channel, address, to_iin, language, subject, body, sent_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (message_id) DO NOTHING`,
		m.ID, d.channel, m.Address, nullable(m.ToIIN), m.Language, m.Subject, m.Body, d.clock.Now())
	if err != nil {
		return fmt.Errorf("dev %s: %w", d.channel, err)
	}
	return nil
}

// Sent is one message in the dev outbox.
type Sent struct {
	ID        int64
	MessageID uuid.UUID
	Channel   string
	Address   string
	ToIIN     string
	Language  string
	Subject   string
	Body      string
	SentAt    time.Time
}

// OutboxFilter selects from the dev outbox.
type OutboxFilter struct {
	To      string // an IIN, phone or e-mail address; empty for all
	Channel string // sms or email; empty for both
	After   int64  // only entries after this id (for following)
	Limit   int    // the newest Limit entries (after After); 0 means 20
}

// DevOutbox returns entries of the dev outbox, oldest first: the newest
// f.Limit of those that match.
func DevOutbox(ctx context.Context, db *pgxpool.Pool, f OutboxFilter) ([]Sent, error) {
	if f.Limit <= 0 {
		f.Limit = 20
	}
	rows, err := db.Query(ctx, `SELECT * FROM (
		SELECT id, message_id, channel, address, coalesce(to_iin, ''), language, subject, body, sent_at FROM notify_dev_outbox
		WHERE ($1 = '' OR address = $1 OR to_iin = $1) AND ($2 = '' OR channel = $2) AND id > $3
		ORDER BY id DESC LIMIT $4) newest ORDER BY id`, f.To, f.Channel, f.After, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("read dev outbox: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Sent])
}
