// Package audit owns the append-only record of who did what to whose data.
// Capabilities write to it inside their own transactions, so an action and its
// audit entry commit or vanish together; a database trigger refuses every
// UPDATE, DELETE and TRUNCATE of the trail.
//
// Owns: table audit_event.
//
// May import: internal/pg, internal/clock.
package audit

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the audit capability's part of the database.
func Schema() pg.Schema { return pg.NewSchema("audit", migrations) }

// Event is one audited action.
type Event struct {
	At         time.Time
	Actor      string // who acted: "citizen:<IIN>", "system:process", "officer:<id>"
	Action     string // what was done: "registry.population.read"
	SubjectIIN string // whose personal data was touched; "" when nobody's
	Object     string // what it was done to or for: "application:<id>"
	Purpose    string // why: the legal basis or the service
	RequestID  string
}

// Insert begins a statement that appends events, followed by the values of
// (at, actor, action, subject_iin, object, purpose, request_id) as VALUES or
// a SELECT: for callers that write many events in one statement, or an
// event inside a statement of their own.
const Insert = `INSERT INTO audit_event (at, actor, action, subject_iin, object, purpose, request_id) `

// Record appends e within tx.
func Record(ctx context.Context, tx pgx.Tx, e Event) error {
	var subject any
	if e.SubjectIIN != "" {
		subject = e.SubjectIIN
	}
	_, err := tx.Exec(ctx, Insert+`VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		e.At, e.Actor, e.Action, subject, e.Object, e.Purpose, e.RequestID)
	if err != nil {
		return fmt.Errorf("record audit event %s: %w", e.Action, err)
	}
	return nil
}

// reader is a transaction or a pool.
type reader interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ForSubject returns the events that touched the person's data, newest first.
func ForSubject(ctx context.Context, db reader, subjectIIN string, limit int) ([]Event, error) {
	rows, err := db.Query(ctx, `
		SELECT at, actor, action, coalesce(subject_iin, ''), object, purpose, request_id
		FROM audit_event WHERE subject_iin = $1 ORDER BY at DESC, id DESC LIMIT $2`, subjectIIN, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit events: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Event, error) {
		var e Event
		err := row.Scan(&e.At, &e.Actor, &e.Action, &e.SubjectIIN, &e.Object, &e.Purpose, &e.RequestID)
		return e, err
	})
}
