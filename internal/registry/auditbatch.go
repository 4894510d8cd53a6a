package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/audit"
)

// auditBatcher writes the audit events of API point reads in shared
// transactions: every read waits until its event is committed before its
// data is sent, so no read is ever shown without its trace, while one
// commit covers all the reads that arrived during the previous commit
// (group commit). A failed batch fails every read in it.
type auditBatcher struct {
	pool *pgxpool.Pool
	once sync.Once
	ch   chan auditReq
}

type auditReq struct {
	ev   audit.Event
	done chan error
}

// maxAuditBatch bounds the events of one transaction; auditWriters
// transactions may be committing at once, so a read waits for at most the
// commit that follows its arrival.
const (
	maxAuditBatch = 512
	auditWriters  = 4
)

func (b *auditBatcher) start() {
	b.ch = make(chan auditReq, 4*maxAuditBatch)
	for range auditWriters {
		go b.writer()
	}
}

func (b *auditBatcher) writer() {
	batch := make([]auditReq, 0, maxAuditBatch)
	for first := range b.ch {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxAuditBatch {
			select {
			case r := <-b.ch:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		err := b.write(batch)
		for _, r := range batch {
			r.done <- err
		}
	}
}

func (b *auditBatcher) write(batch []auditReq) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := len(batch)
	at, actors, actions, subjects, objects, purposes, reqs := make([]time.Time, n), make([]string, n), make([]string, n),
		make([]*string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, r := range batch {
		e := r.ev
		at[i], actors[i], actions[i], objects[i], purposes[i], reqs[i] = e.At, e.Actor, e.Action, e.Object, e.Purpose, e.RequestID
		if e.SubjectIIN != "" {
			s := e.SubjectIIN
			subjects[i] = &s
		}
	}
	// One statement, its own transaction: all the batch's events or none.
	_, err := b.pool.Exec(ctx, audit.Insert+`SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])`,
		at, actors, actions, subjects, objects, purposes, reqs)
	if err != nil {
		return fmt.Errorf("record %d audit events: %w", n, err)
	}
	return nil
}

// enqueue queues e and returns what tells when it is committed. Once
// queued the event is written whatever happens to the request: the read is
// not answered without it, but it is not withdrawn either.
func (b *auditBatcher) enqueue(ctx context.Context, e audit.Event) (<-chan error, error) {
	b.once.Do(b.start)
	r := auditReq{ev: e, done: make(chan error, 1)}
	select {
	case b.ch <- r:
		return r.done, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// GetCommitted reads a record as [Store.Get] does, outside any transaction,
// and returns it only once the read's audit event is committed (batched
// with concurrent reads). It is the API's point read.
func (s *Store) GetCommitted(ctx context.Context, registry, key string, asOf *time.Time, a Access) (Record, bool, error) {
	d, ok := s.Definition(registry)
	if !ok {
		return Record{}, false, ErrUnknownRegistry
	}
	if a.Actor == "" || a.Purpose == "" {
		return Record{}, false, ErrAccessUnexplained
	}
	query, args, action := readRecord(registry, key, asOf)
	event := func(subject string) audit.Event {
		return audit.Event{At: s.clock.Now(), Actor: a.Actor, Action: action, SubjectIIN: subject,
			Object: objectOf(a, d.Name, key), Purpose: a.Purpose, RequestID: a.RequestID}
	}
	// When the key names the person, the read's audit event is known before
	// the read, and its commit runs while the record is read.
	var committed <-chan error
	if subject := keySubject(key); d.Subject == d.Key.Attribute && subject != "" {
		var err error
		if committed, err = s.audits.enqueue(ctx, event(subject)); err != nil {
			return Record{}, false, err
		}
	}
	rec, err := scanRecord(s.pool.QueryRow(ctx, query, args...))
	found := err == nil
	if committed == nil {
		var qerr error
		if committed, qerr = s.audits.enqueue(ctx, event(subjectOf(d, rec.Data))); qerr != nil {
			return Record{}, false, qerr
		}
	}
	if cerr := <-committed; cerr != nil {
		return Record{}, false, cerr
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Record{}, false, fmt.Errorf("read record: %w", err)
	}
	return rec, found, nil
}
