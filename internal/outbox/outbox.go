// Package outbox owns the platform's event outbox: every state change that
// others may react to (a decided application, a changed registry record) is
// written here in the same transaction as the change itself, so an event
// exists if and only if its change committed. Consumers (notifications,
// monitoring, proactive services) read it in id order.
//
// Owns: table outbox_event; topics are named capability.thing.happened.
//
// May import: internal/pg.
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the outbox's part of the database.
func Schema() pg.Schema { return pg.NewSchema("outbox", migrations) }

// Event is one recorded event.
type Event struct {
	ID        int64
	Topic     string
	Key       string
	Payload   json.RawMessage
	CreatedAt time.Time
}

// Emit records an event within tx.
func Emit(ctx context.Context, tx pgx.Tx, at time.Time, topic, key string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", topic, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO outbox_event (topic, key, payload, created_at) VALUES ($1, $2, $3, $4)`,
		topic, key, b, at); err != nil {
		return fmt.Errorf("emit %s event: %w", topic, err)
	}
	return nil
}

type reader interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// After returns up to limit events with id greater than after, in order.
func After(ctx context.Context, db reader, after int64, limit int) ([]Event, error) {
	rows, err := db.Query(ctx, `SELECT id, topic, key, payload, created_at FROM outbox_event WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Event])
}
