// Package outbox owns the platform's event outbox: every state change that
// others may react to (a decided application, a changed registry record) is
// written here in the same transaction as the change itself, so an event
// exists if and only if its change committed.
//
// # Consuming
//
// Ids are taken when an event is inserted, but transactions commit in any
// order: an event with a lower id can become visible after one with a
// higher id, so a consumer that remembers "the last id seen" skips it for
// ever. Each event therefore records its transaction (column tx, xid8), and
// [Consume] reads in (tx, id) order and only events whose transaction is
// older than the oldest transaction still running
// (pg_snapshot_xmin(pg_current_snapshot())): every such transaction has
// ended, so no event can later appear before the consumer's cursor.
//
// Guarantees of [Consume]: a consumer (a name) sees each committed event of
// its topics once, in (tx, id) order, in the same transaction that advances
// its cursor, so work done in fn commits if and only if the cursor moves
// past its events (exactly once for effects in the database). Two nodes
// running the same consumer never get the same batch: the cursor row is
// locked with SKIP LOCKED, and the node that finds it locked returns at once
// with nothing. The price: a transaction that stays open, in any database
// of the cluster, holds back every consumer (events wait until it ends),
// so keep transactions short.
//
// [Read] gives the same order to a reader that keeps its own [Cursor] (an
// API client following a feed): it never moves past a transaction that
// may still commit.
//
// [After] is the old id-order read, kept for tests and tools that look at a
// quiet database; live consumers use [Consume].
//
// Owns: tables outbox_event, outbox_consumer; topics are named
// capability.thing.happened.
//
// May import: internal/pg.
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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
	// Tx is the transaction that wrote the event: events of one business
	// transaction share it.
	Tx uint64
}

const insertEvent = `INSERT INTO outbox_event (topic, key, payload, created_at) VALUES ($1, $2, $3, $4)`

// Emit records an event within tx.
func Emit(ctx context.Context, tx pgx.Tx, at time.Time, topic, key string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", topic, err)
	}
	if _, err := tx.Exec(ctx, insertEvent, topic, key, b, at); err != nil {
		return fmt.Errorf("emit %s event: %w", topic, err)
	}
	return nil
}

// Queue adds an event to a batch that the caller sends in its
// transaction: with the transaction's other writes, one round trip for all.
func Queue(batch *pgx.Batch, at time.Time, topic, key string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", topic, err)
	}
	batch.Queue(insertEvent, topic, key, b, at)
	return nil
}

type reader interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// After returns up to limit events with id greater than after, in id order.
// On a busy database it can miss an event that commits late (see the
// package comment); consumers use [Consume].
func After(ctx context.Context, db reader, after int64, limit int) ([]Event, error) {
	rows, err := db.Query(ctx, `SELECT id, topic, key, payload, created_at, tx FROM outbox_event WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Event])
}

// Cursor is a place in the outbox's commit-safe order: after the event id
// of transaction tx. The zero Cursor is the beginning.
type Cursor struct {
	Tx uint64
	ID int64
}

// String is the cursor as API clients pass it back: "<tx>.<id>".
func (c Cursor) String() string {
	return strconv.FormatUint(c.Tx, 10) + "." + strconv.FormatInt(c.ID, 10)
}

// ParseCursor reads a Cursor written by String; "" is the beginning.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	txs, ids, ok := strings.Cut(s, ".")
	tx, err1 := strconv.ParseUint(txs, 10, 64)
	id, err2 := strconv.ParseInt(ids, 10, 64)
	if !ok || err1 != nil || err2 != nil || id < 0 {
		return Cursor{}, fmt.Errorf("outbox cursor %q: want <tx>.<id>", s)
	}
	return Cursor{Tx: tx, ID: id}, nil
}

// Read returns up to limit events of topics after the cursor, in (tx, id)
// order, and the cursor to read on from. Like [Consume] it reads only
// events whose transaction is older than every transaction still running,
// so a late commit is never passed over; with fewer than limit events the
// cursor moves past other topics' events too.
func Read(ctx context.Context, pool *pgxpool.Pool, topics []string, after Cursor, limit int) (events []Event, next Cursor, err error) {
	if limit <= 0 {
		return nil, after, fmt.Errorf("read outbox: limit %d must be positive", limit)
	}
	if len(topics) == 0 {
		return nil, after, nil
	}
	err = pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) (err error) {
		events, next, err = readAfter(ctx, tx, topics, after, limit)
		return err
	})
	return events, next, err
}

// readAfter reads up to limit events of topics (all, when none are named)
// after the cursor, in (tx, id) order and below the oldest running
// transaction, and returns the cursor to go on from: past the last event
// read, or, when fewer than limit were left, past every event below that
// horizon, so that later reads do not walk other topics' events again.
func readAfter(ctx context.Context, tx pgx.Tx, topics []string, after Cursor, limit int) ([]Event, Cursor, error) {
	// One horizon for both reads below: every transaction below it has
	// ended, and stays ended.
	var horizon uint64
	if err := tx.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())`).Scan(&horizon); err != nil {
		return nil, after, fmt.Errorf("read snapshot: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT id, topic, key, payload, created_at, tx FROM outbox_event
		WHERE tx < $1::xid8 AND (tx, id) > ($2::xid8, $3) AND (coalesce(cardinality($4::text[]), 0) = 0 OR topic = ANY($4::text[]))
		ORDER BY tx, id LIMIT $5`, horizon, after.Tx, after.ID, topics, limit)
	if err != nil {
		return nil, after, fmt.Errorf("read events: %w", err)
	}
	events, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Event])
	if err != nil {
		return nil, after, fmt.Errorf("read events: %w", err)
	}
	if len(events) == limit {
		last := events[len(events)-1]
		return events, Cursor{last.Tx, last.ID}, nil
	}
	next := after
	err = tx.QueryRow(ctx, `SELECT tx, id FROM outbox_event WHERE tx < $1::xid8 AND (tx, id) > ($2::xid8, $3)
		ORDER BY tx DESC, id DESC LIMIT 1`, horizon, after.Tx, after.ID).Scan(&next.Tx, &next.ID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, after, fmt.Errorf("read horizon: %w", err)
	}
	return events, next, nil
}

// Handler processes a batch of events within tx, the transaction that
// advances the consumer's cursor past them. An error rolls back both, and
// the same batch comes again: return errors for passing trouble only, and
// skip (and log) an event that can never be processed.
type Handler func(ctx context.Context, tx pgx.Tx, events []Event) error

// Consume delivers the next events of topics (all topics when empty; up to
// limit, in (tx, id) order) to fn in one transaction that also advances the cursor of
// consumer, and commits. It returns how many events fn got: 0 when there
// are none or when another node holds this consumer's cursor right now. fn
// is not called with an empty batch.
func Consume(ctx context.Context, pool *pgxpool.Pool, consumer string, topics []string, limit int, fn Handler) (n int, err error) {
	if limit <= 0 {
		return 0, fmt.Errorf("consume outbox: limit %d must be positive", limit)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO outbox_consumer (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, consumer); err != nil {
		return 0, fmt.Errorf("consume outbox as %s: register: %w", consumer, err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var curTx uint64
		var curID int64
		err := tx.QueryRow(ctx, `SELECT tx, id FROM outbox_consumer WHERE name = $1 FOR UPDATE SKIP LOCKED`, consumer).Scan(&curTx, &curID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // another node is consuming: nothing for us now
		}
		if err != nil {
			return fmt.Errorf("lock cursor: %w", err)
		}
		cur := Cursor{curTx, curID}
		events, next, err := readAfter(ctx, tx, topics, cur, limit)
		if err != nil {
			return err
		}
		if len(events) > 0 {
			if err := fn(ctx, tx, events); err != nil {
				return err
			}
		}
		if next == cur {
			n = len(events)
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE outbox_consumer SET tx = $2::xid8, id = $3, updated_at = now() WHERE name = $1`,
			consumer, next.Tx, next.ID); err != nil {
			return fmt.Errorf("advance cursor: %w", err)
		}
		n = len(events)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("consume outbox as %s: %w", consumer, err)
	}
	return n, nil
}
