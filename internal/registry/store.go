package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/outbox"
)

// Operations on a record; each writes a new version.
const (
	OpCreate  = "create"
	OpUpdate  = "update"
	OpCorrect = "correct" // fixes an error: as-of reads from its valid_from on see the fix
	OpCancel  = "cancel"  // the record ends; its history stays
)

// Errors of the record store.
var (
	ErrUnknownRegistry = errors.New("no such registry")
	ErrNotFound        = errors.New("no such record")
	ErrExists          = errors.New("record already exists")
	ErrCancelled       = errors.New("record is cancelled")
	ErrNoReason        = errors.New("a change needs an actor and a legal basis or an application id")
)

// InvalidError is a record that breaks its registry's definition.
type InvalidError struct{ Problems []FieldProblem }

func (e *InvalidError) Error() string {
	var b strings.Builder
	b.WriteString("invalid record:")
	for _, p := range e.Problems {
		fmt.Fprintf(&b, " %s %s;", p.Path, p.Code)
	}
	return b.String()
}

// Store holds the registries declared by definitions: their records with
// every version, read only with an audited [Access].
type Store struct {
	pool  *pgxpool.Pool
	clock clock.Clock

	mu          sync.RWMutex
	defs        map[string]*Definition
	classifiers map[string]*Classifier
	consumers   ConsumerSource
	audits      *auditBatcher
	consent     ConsentChecker  // see SetConsent (api.go)
	dbs         databaseCatalog // numbers and states (database.go)
}

// NewStore returns a store on pool with no registries; [Store.Install] adds
// them.
func NewStore(pool *pgxpool.Pool, c clock.Clock) *Store {
	return &Store{pool: pool, clock: c, defs: map[string]*Definition{}, classifiers: map[string]*Classifier{}, audits: &auditBatcher{pool: pool}}
}

// Install records the set's definitions and classifiers (each version once;
// a version already installed with other content is refused), numbers new
// registries, and serves the newest installed version of each registry:
// the set's, or a newer one published through the API.
func (s *Store) Install(ctx context.Context, set *Set) error {
	now := s.clock.Now()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Publishing takes the same lock first: neither waits for the other
		// while holding what the other needs.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, databaseLock); err != nil {
			return fmt.Errorf("lock registry numbers: %w", err)
		}
		for _, name := range sortedKeys(set.Classifiers) {
			c := set.Classifiers[name]
			var src string
			err := tx.QueryRow(ctx, `INSERT INTO registry_classifier (name, version, source, installed_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (name, version) DO UPDATE SET name = excluded.name RETURNING source`, c.Name, c.Version, string(c.Source), now).Scan(&src)
			if err != nil {
				return fmt.Errorf("install classifier %s: %w", c.Name, err)
			}
			if src != string(c.Source) {
				return fmt.Errorf("classifier %s version %d is installed with other content: give it a new version", c.Name, c.Version)
			}
		}
		for _, name := range sortedKeys(set.Registries) {
			d := set.Registries[name]
			j, err := json.Marshal(d)
			if err != nil {
				return err
			}
			var src string
			var inserted bool
			err = tx.QueryRow(ctx, `INSERT INTO registry_definition (name, version, owner, source, definition, installed_at) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (name, version) DO UPDATE SET name = excluded.name RETURNING source, xmax = 0`, d.Name, d.Version, d.Owner, string(d.Source), j, now).Scan(&src, &inserted)
			if err != nil {
				return fmt.Errorf("install registry %s: %w", d.Name, err)
			}
			if src != string(d.Source) {
				return fmt.Errorf("registry %s version %d is installed with other content: give it a new version", d.Name, d.Version)
			}
			if _, err := noteDatabase(ctx, tx, d.Name, now, inserted); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.Use(set)
	// A version published through the API that is newer than the file's
	// wins.
	if err := s.Refresh(ctx); err != nil {
		return err
	}
	return s.ensureIndexes(ctx, s.Definitions()...)
}

// Use serves the set's definitions and classifiers without recording them
// in the database ([Store.Install] does both).
func (s *Store) Use(set *Set) {
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.Copy(s.defs, set.Registries)
	maps.Copy(s.classifiers, set.Classifiers)
}

// Definition returns the current definition of a registry.
func (s *Store) Definition(name string) (*Definition, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.defs[name]
	return d, ok
}

// Definitions returns every registry's current definition, by name.
func (s *Store) Definitions() []*Definition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Definition, 0, len(s.defs))
	for _, k := range sortedKeys(s.defs) {
		out = append(out, s.defs[k])
	}
	return out
}

// Classifiers returns the classifiers in use, by name.
func (s *Store) Classifiers() map[string]*Classifier {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.classifiers)
}

// Change is one change to one record.
type Change struct {
	Registry string
	Key      string
	Op       string
	// Data is the whole record after the change (ignored for cancel).
	Data map[string]any
	// ValidFrom is when the change takes effect in the world; zero means
	// now. A correction usually takes the valid_from of what it corrects.
	ValidFrom     time.Time
	Actor         string
	Basis         string // the legal basis
	ApplicationID string // or the application that caused it
	Reason        string // free text, e.g. what a correction fixes
}

// Record is one version of a record.
type Record struct {
	Registry      string         `json:"registry"`
	Key           string         `json:"key"`
	Version       int            `json:"version"`
	Op            string         `json:"op"`
	Cancelled     bool           `json:"cancelled"`
	Data          map[string]any `json:"data"`
	ValidFrom     time.Time      `json:"valid_from"`
	RecordedAt    time.Time      `json:"recorded_at"`
	Actor         string         `json:"actor"`
	Basis         string         `json:"basis,omitempty"`
	ApplicationID string         `json:"application_id,omitempty"`
	Reason        string         `json:"reason,omitempty"`
}

// Apply writes a change as the record's next version in tx, with its
// change event (registry.<name>.changed) in the outbox.
func (s *Store) Apply(ctx context.Context, tx pgx.Tx, c Change) (Record, error) {
	d, ok := s.Definition(c.Registry)
	if !ok {
		return Record{}, ErrUnknownRegistry
	}
	if c.Actor == "" || (c.Basis == "" && c.ApplicationID == "") {
		return Record{}, ErrNoReason
	}
	if err := checkWritable(ctx, tx, c.Registry); err != nil {
		return Record{}, err
	}
	now := s.clock.Now()
	if c.ValidFrom.IsZero() {
		c.ValidFrom = now
	}
	var cur struct {
		version   int
		cancelled bool
		data      []byte
	}
	// One writer per record at a time: the lock lasts to the end of tx.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, c.Registry+"/"+c.Key); err != nil {
		return Record{}, fmt.Errorf("lock record: %w", err)
	}
	err := tx.QueryRow(ctx, `SELECT version, op = 'cancel', data FROM registry_record_version
		WHERE registry = $1 AND key = $2 ORDER BY version DESC LIMIT 1`,
		c.Registry, c.Key).Scan(&cur.version, &cur.cancelled, &cur.data)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("lock record: %w", err)
	}
	var data map[string]any
	switch c.Op {
	case OpCreate:
		if exists {
			return Record{}, ErrExists
		}
	case OpUpdate, OpCorrect, OpCancel:
		if !exists {
			return Record{}, ErrNotFound
		}
		if cur.cancelled {
			return Record{}, ErrCancelled
		}
	default:
		return Record{}, fmt.Errorf("unknown operation %q", c.Op)
	}
	if c.Op == OpCancel {
		if err := json.Unmarshal(cur.data, &data); err != nil {
			return Record{}, err
		}
	} else {
		data = c.Data
		if data == nil {
			data = map[string]any{}
		}
		if k, ok := data[d.Key.Attribute]; !ok {
			data[d.Key.Attribute] = c.Key
		} else if k != c.Key {
			return Record{}, &InvalidError{[]FieldProblem{{"/" + d.Key.Attribute, "key.mismatch"}}}
		}
		if probs := d.Check(data, s.Classifiers()); len(probs) > 0 {
			return Record{}, &InvalidError{probs}
		}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return Record{}, err
	}
	rec := Record{Registry: c.Registry, Key: c.Key, Version: cur.version + 1, Op: c.Op, Cancelled: c.Op == OpCancel, Data: data,
		ValidFrom: c.ValidFrom.UTC(), RecordedAt: now.UTC(), Actor: c.Actor, Basis: c.Basis, ApplicationID: c.ApplicationID, Reason: c.Reason}
	if _, err := tx.Exec(ctx, `INSERT INTO registry_record_version
		(registry, key, version, op, data, valid_from, recorded_at, actor, basis, application_id, reason, def_version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		rec.Registry, rec.Key, rec.Version, rec.Op, b, rec.ValidFrom, rec.RecordedAt, rec.Actor, rec.Basis, rec.ApplicationID, rec.Reason, d.Version); err != nil {
		return Record{}, fmt.Errorf("write record version: %w", err)
	}
	var prev map[string]any
	if exists && cur.data != nil {
		_ = json.Unmarshal(cur.data, &prev)
	}
	if err := outbox.Emit(ctx, tx, now, "registry."+c.Registry+".changed", c.Key, ChangeEvent{
		Registry: c.Registry, Key: c.Key, Version: rec.Version, Op: c.Op, ValidFrom: rec.ValidFrom,
		Changed: changedAttributes(prev, data, c.Op), Basis: c.Basis, ApplicationID: c.ApplicationID,
	}); err != nil {
		return Record{}, err
	}
	return rec, nil
}

// ChangeEvent is the payload of registry.<name>.changed. It names what
// changed, not the values: subscribers read the record (audited) if they
// need them.
type ChangeEvent struct {
	Registry      string    `json:"registry"`
	Key           string    `json:"key"`
	Version       int       `json:"version"`
	Op            string    `json:"op"`
	ValidFrom     time.Time `json:"valid_from"`
	Changed       []string  `json:"changed"`
	Basis         string    `json:"basis,omitempty"`
	ApplicationID string    `json:"application_id,omitempty"`
}

func changedAttributes(prev, next map[string]any, op string) []string {
	if op == OpCancel {
		return []string{}
	}
	out := []string{}
	for k, v := range next {
		if pv, ok := prev[k]; !ok || !jsonEqual(pv, v) {
			out = append(out, k)
		}
	}
	for k := range prev {
		if _, ok := next[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// ApplyNow runs Apply in a transaction of its own.
func (s *Store) ApplyNow(ctx context.Context, c Change) (rec Record, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rec, err = s.Apply(ctx, tx, c)
		return err
	})
	return rec, err
}

// subjectOf is the IIN of the person a record is about, or "".
func subjectOf(d *Definition, data map[string]any) string {
	if d.Subject == "" {
		return ""
	}
	s, _ := data[d.Subject].(string)
	if len(s) != 12 {
		return ""
	}
	return s
}

// auditReads records one read event per record in tx: one row per person
// whose data was read, in one statement.
func (s *Store) auditReads(ctx context.Context, tx pgx.Tx, d *Definition, action string, a Access, keys, subjects []string) error {
	if len(keys) == 0 {
		return nil
	}
	if len(keys) == 1 {
		return audit.Record(ctx, tx, audit.Event{At: s.clock.Now(), Actor: a.Actor, Action: action, SubjectIIN: subjects[0],
			Object: objectOf(a, d.Name, keys[0]), Purpose: a.Purpose, RequestID: a.RequestID})
	}
	objects := make([]string, len(keys))
	subs := make([]*string, len(keys))
	for i := range keys {
		objects[i] = objectOf(a, d.Name, keys[i])
		if subjects[i] != "" {
			subs[i] = &subjects[i]
		}
	}
	_, err := tx.Exec(ctx, audit.Insert+`SELECT $1, $2, $3, s, o, $6, $7 FROM unnest($4::text[], $5::text[]) AS t(s, o)`,
		s.clock.Now(), a.Actor, action, subs, objects, a.Purpose, a.RequestID)
	if err != nil {
		return fmt.Errorf("record audit events %s: %w", action, err)
	}
	return nil
}

func objectOf(a Access, registry, key string) string {
	o := "registry:" + registry + "/" + key
	if a.Object != "" {
		o += " for " + a.Object
	}
	return o
}

const recordCols = `registry, key, version, op, data, valid_from, recorded_at, actor, basis, application_id, reason`

// currentVersions selects the newest version of each record of registry $1
// with a key after $2, in key order.
const currentVersions = `SELECT DISTINCT ON (key) ` + recordCols + ` FROM registry_record_version
	WHERE registry = $1 AND key > $2 ORDER BY key, version DESC`

func scanRecord(row pgx.Row) (Record, error) {
	var r Record
	var data []byte
	if err := row.Scan(&r.Registry, &r.Key, &r.Version, &r.Op, &data, &r.ValidFrom, &r.RecordedAt, &r.Actor, &r.Basis, &r.ApplicationID, &r.Reason); err != nil {
		return Record{}, err
	}
	r.Cancelled = r.Op == OpCancel
	if err := json.Unmarshal(data, &r.Data); err != nil {
		return Record{}, err
	}
	r.ValidFrom, r.RecordedAt = r.ValidFrom.UTC(), r.RecordedAt.UTC()
	return r, nil
}

// Get reads a record in tx: its current version, or with asOf the version
// in force at that instant (the newest version whose valid_from is not
// after it; corrections included). The read is audited in tx, found or not.
func (s *Store) Get(ctx context.Context, tx pgx.Tx, registry, key string, asOf *time.Time, a Access) (Record, bool, error) {
	d, ok := s.Definition(registry)
	if !ok {
		return Record{}, false, ErrUnknownRegistry
	}
	if a.Actor == "" || a.Purpose == "" {
		return Record{}, false, ErrAccessUnexplained
	}
	query, args, action := readRecord(registry, key, asOf)
	rec, err := scanRecord(tx.QueryRow(ctx, query, args...))
	found := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Record{}, false, fmt.Errorf("read record: %w", err)
	}
	subject := subjectOf(d, rec.Data)
	if !found && d.Subject == d.Key.Attribute {
		subject = keySubject(key)
	}
	if err := s.auditReads(ctx, tx, d, action, a, []string{key}, []string{subject}); err != nil {
		return Record{}, false, err
	}
	return rec, found, nil
}

// readRecord is the query of a record's current version, or of the one in
// force at asOf, and the audit action of the read.
func readRecord(registry, key string, asOf *time.Time) (query string, args []any, action string) {
	if asOf == nil {
		return `SELECT ` + recordCols + ` FROM registry_record_version
			WHERE registry = $1 AND key = $2 ORDER BY version DESC LIMIT 1`, []any{registry, key}, "registry." + registry + ".read"
	}
	return `SELECT ` + recordCols + ` FROM registry_record_version
		WHERE registry = $1 AND key = $2 AND valid_from <= $3 ORDER BY valid_from DESC, version DESC LIMIT 1`,
		[]any{registry, key, *asOf}, "registry." + registry + ".read_as_of"
}

func keySubject(key string) string {
	if len(key) != 12 {
		return ""
	}
	for _, c := range key {
		if c < '0' || c > '9' {
			return ""
		}
	}
	return key
}

// History returns every version of a record, oldest first; the read is
// audited.
func (s *Store) History(ctx context.Context, tx pgx.Tx, registry, key string, a Access) ([]Record, error) {
	d, ok := s.Definition(registry)
	if !ok {
		return nil, ErrUnknownRegistry
	}
	if a.Actor == "" || a.Purpose == "" {
		return nil, ErrAccessUnexplained
	}
	rows, err := tx.Query(ctx, `SELECT `+recordCols+` FROM registry_record_version WHERE registry = $1 AND key = $2 ORDER BY version`, registry, key)
	if err != nil {
		return nil, err
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Record, error) { return scanRecord(r) })
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	subject := ""
	if len(recs) > 0 {
		subject = subjectOf(d, recs[len(recs)-1].Data)
	} else if d.Subject == d.Key.Attribute {
		subject = keySubject(key)
	}
	if err := s.auditReads(ctx, tx, d, "registry."+registry+".history", a, []string{key}, []string{subject}); err != nil {
		return nil, err
	}
	return recs, nil
}

// Query selects current records for Search.
type Query struct {
	// Equal filters: attribute -> value (compared as JSON scalars: strings,
	// numbers, booleans).
	Equal map[string]any
	// After is the cursor: the last key of the previous page.
	After string
	Limit int // 1..MaxPage; 0 means DefaultPage
	// Cancelled includes cancelled records.
	Cancelled bool
}

// Page sizes of searches.
const (
	DefaultPage = 50
	MaxPage     = 1000
)

// Search returns current records matching q in key order, and the cursor of
// the next page ("" at the end). Every record returned is audited.
func (s *Store) Search(ctx context.Context, tx pgx.Tx, registry string, q Query, a Access) ([]Record, string, error) {
	d, ok := s.Definition(registry)
	if !ok {
		return nil, "", ErrUnknownRegistry
	}
	if a.Actor == "" || a.Purpose == "" {
		return nil, "", ErrAccessUnexplained
	}
	if q.Limit <= 0 {
		q.Limit = DefaultPage
	}
	q.Limit = min(q.Limit, MaxPage)
	filter, err := json.Marshal(q.Equal)
	if err != nil {
		return nil, "", err
	}
	if q.Equal == nil {
		filter = []byte("{}")
	}
	var rows pgx.Rows
	if attr, value, ok := indexedFilter(d, q); ok {
		rows, err = tx.Query(ctx, indexedSearch(d, attr), registry, q.After, filter, q.Cancelled, q.Limit+1, value)
	} else {
		rows, err = tx.Query(ctx, `SELECT `+recordCols+` FROM (`+currentVersions+`) cur
			WHERE data @> $3 AND ($4 OR op <> 'cancel') ORDER BY key LIMIT $5`, registry, q.After, filter, q.Cancelled, q.Limit+1)
	}
	if err != nil {
		return nil, "", err
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Record, error) { return scanRecord(r) })
	if err != nil {
		return nil, "", fmt.Errorf("search: %w", err)
	}
	next := ""
	if len(recs) > q.Limit {
		recs = recs[:q.Limit]
		next = recs[len(recs)-1].Key
	}
	keys := make([]string, len(recs))
	subjects := make([]string, len(recs))
	for i, r := range recs {
		keys[i], subjects[i] = r.Key, subjectOf(d, r.Data)
	}
	if err := s.auditReads(ctx, tx, d, "registry."+registry+".search", a, keys, subjects); err != nil {
		return nil, "", err
	}
	return recs, next, nil
}

// Empty reports whether the registry has no record, cancelled ones
// included.
func (s *Store) Empty(ctx context.Context, registry string) (bool, error) {
	var exists bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM registry_record_version WHERE registry = $1)`, registry).Scan(&exists)
	return !exists, err
}

// Pool is the store's connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Counts returns how many current (not cancelled) records each registry
// holds. It reads every version: for listings, not for hot paths.
func (s *Store) Counts(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT registry, count(*) FILTER (WHERE version = 1) - count(*) FILTER (WHERE op = 'cancel')
		FROM registry_record_version GROUP BY registry`)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			return nil, err
		}
		out[name] = n
	}
	return out, rows.Err()
}
