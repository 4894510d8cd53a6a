package registry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/outbox"
)

// Limits of an import.
const (
	MaxFieldBytes = 64 << 10 // one CSV field or one JSON value's text
	MaxLineBytes  = 1 << 20  // one NDJSON line or CSV record
	importBatch   = 10000
	maxRejections = 1000 // listed in the report; all are counted
)

// Formats of bulk import and export.
const (
	FormatCSV    = "csv"
	FormatNDJSON = "ndjson"
)

// Row is one parsed input row: its number (1-based data row; the CSV
// header is row 0), the record, and what is wrong with it.
type Row struct {
	N        int
	Data     map[string]any
	Problems []FieldProblem
}

// RowReader reads rows one at a time.
type RowReader interface {
	// Next returns the next row, or io.EOF at the end. A bad row comes back
	// with Problems; an error ends the input (it cannot be read on).
	Next() (Row, error)
}

// NewRowReader returns a reader of format (csv or ndjson) over r for the
// registry d. A CSV's first record names the attributes of its columns.
func NewRowReader(r io.Reader, format string, d *Definition) (RowReader, error) {
	switch format {
	case FormatCSV:
		return newCSVReader(r, d)
	case FormatNDJSON:
		return &ndjsonReader{r: bufio.NewReaderSize(r, 64<<10), d: d}, nil
	}
	return nil, fmt.Errorf("unknown format %q: csv or ndjson", format)
}

type ndjsonReader struct {
	r *bufio.Reader
	d *Definition
	n int
}

// readLine reads one line of at most MaxLineBytes; a longer line is skipped
// to its end and reported as too long.
func readLine(r *bufio.Reader) (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > MaxLineBytes {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF && (len(buf) > 0 || tooLong) {
			return buf, tooLong, nil
		}
		return buf, tooLong, err
	}
}

func (j *ndjsonReader) Next() (Row, error) {
	for {
		line, tooLong, err := readLine(j.r)
		if err != nil {
			return Row{}, err
		}
		j.n++
		row := Row{N: j.n}
		if tooLong {
			row.Problems = []FieldProblem{{"", "too_long"}}
			return row, nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			j.n--
			continue
		}
		if !utf8.Valid(line) {
			row.Problems = []FieldProblem{{"", "encoding"}}
			return row, nil
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
		if err != nil {
			row.Problems = []FieldProblem{{"", "format"}}
			return row, nil
		}
		obj, ok := v.(map[string]any)
		if !ok {
			row.Problems = []FieldProblem{{"", "type"}}
			return row, nil
		}
		row.Data = obj
		for k, v := range obj {
			if s, ok := v.(string); ok && len(s) > MaxFieldBytes {
				row.Problems = append(row.Problems, FieldProblem{"/" + k, "too_long"})
			}
		}
		return row, nil
	}
}

type csvReader struct {
	r      *csv.Reader
	d      *Definition
	cols   []Attribute
	header []string
	n      int
}

func newCSVReader(r io.Reader, d *Definition) (*csvReader, error) {
	c := &csvReader{r: csv.NewReader(&limitedLines{r: bufio.NewReaderSize(r, 64<<10)}), d: d}
	c.r.ReuseRecord = true
	header, err := c.r.Read()
	if err != nil {
		return nil, &HeaderError{Problems: []FieldProblem{{"", "format"}}, cause: err}
	}
	var probs []FieldProblem
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		a, ok := d.Attr(h)
		if !ok {
			probs = append(probs, FieldProblem{"/" + h, "unknown_field"})
		}
		if seen[h] {
			probs = append(probs, FieldProblem{"/" + h, "duplicate"})
		}
		seen[h] = true
		c.cols = append(c.cols, a)
		c.header = append(c.header, h)
		_ = i
	}
	if !seen[d.Key.Attribute] {
		probs = append(probs, FieldProblem{"/" + d.Key.Attribute, "required"})
	}
	if len(probs) > 0 {
		return nil, &HeaderError{Problems: probs}
	}
	return c, nil
}

// HeaderError is a CSV whose header cannot be used: no row can be read.
type HeaderError struct {
	Problems []FieldProblem
	cause    error
}

func (e *HeaderError) Error() string {
	var parts []string
	for _, p := range e.Problems {
		parts = append(parts, p.Path+" "+p.Code)
	}
	s := "bad CSV header: " + strings.Join(parts, ", ")
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// limitedLines feeds csv.Reader while keeping a single line from growing
// without bound: a line longer than MaxLineBytes is cut, which the CSV
// reader then reports for that record.
type limitedLines struct {
	r   *bufio.Reader
	run int
}

func (l *limitedLines) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			l.run = 0
		} else if l.run++; l.run > MaxLineBytes {
			return 0, errLineTooLong
		}
	}
	return n, err
}

var errLineTooLong = errors.New("a line is longer than the limit")

func (c *csvReader) Next() (Row, error) {
	rec, err := c.r.Read()
	if err == io.EOF {
		return Row{}, io.EOF
	}
	c.n++
	row := Row{N: c.n}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) && !errors.Is(err, errLineTooLong) {
			if errors.Is(pe.Err, csv.ErrFieldCount) {
				row.Problems = []FieldProblem{{"", "field_count"}}
			} else {
				row.Problems = []FieldProblem{{"", "csv"}}
			}
			return row, nil
		}
		return Row{}, fmt.Errorf("row %d: %w", c.n, err)
	}
	row.Data = make(map[string]any, len(rec))
	for i, v := range rec {
		a := c.cols[i]
		path := "/" + a.Name
		if len(v) > MaxFieldBytes {
			row.Problems = append(row.Problems, FieldProblem{path, "too_long"})
			continue
		}
		if !utf8.ValidString(v) {
			row.Problems = append(row.Problems, FieldProblem{path, "encoding"})
			continue
		}
		if v == "" {
			continue
		}
		val, ok := cellValue(v, a.Schema)
		if !ok {
			row.Problems = append(row.Problems, FieldProblem{path, "type"})
			continue
		}
		row.Data[a.Name] = val
	}
	return row, nil
}

// cellValue types a CSV cell by the attribute's schema type; objects and
// arrays are JSON in the cell.
func cellValue(v string, schema map[string]any) (any, bool) {
	t, _ := schema["type"].(string)
	switch t {
	case "integer", "number":
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return nil, false
		}
		return json.Number(v), true
	case "boolean":
		b, err := strconv.ParseBool(v)
		return b, err == nil
	case "object", "array":
		x, err := jsonschema.UnmarshalJSON(strings.NewReader(v))
		return x, err == nil
	default:
		return strings.Clone(v), true
	}
}

// Rejection is one rejected row and why.
type Rejection struct {
	Row   int    `json:"row"`
	Key   string `json:"key,omitempty"`
	Field string `json:"field"`
	Code  string `json:"code"`
}

// ImportReport says what an import did.
type ImportReport struct {
	Registry   string        `json:"registry"`
	Read       int           `json:"read"`
	Imported   int           `json:"imported"`
	Rejected   int           `json:"rejected"`
	Rejections []Rejection   `json:"rejections"` // the first maxRejections
	Elapsed    time.Duration `json:"elapsed_ns"`
}

func (r *ImportReport) reject(row int, key string, probs []FieldProblem) {
	r.Rejected++
	for _, p := range probs {
		if len(r.Rejections) < maxRejections {
			r.Rejections = append(r.Rejections, Rejection{Row: row, Key: key, Field: p.Path, Code: p.Code})
		}
	}
}

// ImportEvent is the payload of registry.<name>.imported: one batch of
// records created by an import, in one transaction.
type ImportEvent struct {
	Registry      string    `json:"registry"`
	Keys          []string  `json:"keys"`
	ValidFrom     time.Time `json:"valid_from"`
	Basis         string    `json:"basis,omitempty"`
	ApplicationID string    `json:"application_id,omitempty"`
}

// ImportOptions say who imports and why.
type ImportOptions struct {
	Actor         string
	Basis         string
	ApplicationID string
	ValidFrom     time.Time // zero: now
	// Progress, if set, is called after each batch.
	Progress func(ImportReport)
}

// Import creates the records read from rows, validated row by row: a bad
// row (wrong type, invalid IIN/BIN, unknown code, a key already in the
// registry or earlier in the input, an oversized field, broken CSV or
// UTF-8) is rejected with its row and field and the rest goes on. Each batch
// of good rows is written in one transaction (COPY) with their versions and
// one registry.<name>.imported event naming their keys, so no rejected row
// is ever partly written.
func (s *Store) Import(ctx context.Context, registry string, rows RowReader, o ImportOptions) (ImportReport, error) {
	start := time.Now()
	rep := ImportReport{Registry: registry, Rejections: []Rejection{}}
	d, ok := s.Definition(registry)
	if !ok {
		return rep, ErrUnknownRegistry
	}
	if o.Actor == "" || (o.Basis == "" && o.ApplicationID == "") {
		return rep, ErrNoReason
	}
	classifiers := s.Classifiers()
	seen := map[string]struct{}{}
	// Rows are parsed and checked here while the previous batch is written
	// by the writer goroutine: two cores, two stages.
	var mu sync.Mutex // guards rep
	batches := make(chan []pending, 2)
	written := make(chan error, 1)
	var failed atomic.Bool
	go func() {
		var werr error
		for b := range batches {
			if werr != nil {
				continue // drain
			}
			// Written without the report's lock, which the reading stage
			// takes for every row: holding it through a copy and its commit
			// would stop the reading for as long.
			var done ImportReport
			werr = s.writeBatch(ctx, d, b, o, &done)
			failed.Store(werr != nil)
			mu.Lock()
			rep.Imported += done.Imported
			rep.Rejected += done.Rejected
			rep.Rejections = append(rep.Rejections, done.Rejections[:min(len(done.Rejections), maxRejections-len(rep.Rejections))]...)
			rep.Elapsed = time.Since(start)
			snapshot := rep
			mu.Unlock()
			if werr == nil && o.Progress != nil {
				o.Progress(snapshot)
			}
		}
		written <- werr
	}()
	finish := func(err error) (ImportReport, error) {
		close(batches)
		werr := <-written
		mu.Lock()
		defer mu.Unlock()
		rep.Elapsed = time.Since(start)
		if err == nil {
			err = werr
		}
		return rep, err
	}
	reject := func(row int, key string, probs []FieldProblem) {
		mu.Lock()
		rep.reject(row, key, probs)
		mu.Unlock()
	}
	batch := make([]pending, 0, importBatch)
	for {
		if err := ctx.Err(); err != nil {
			return finish(err)
		}
		if failed.Load() {
			return finish(nil) // the writer's error
		}
		row, err := rows.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return finish(err)
		}
		mu.Lock()
		rep.Read++
		mu.Unlock()
		key, _ := row.Data[d.Key.Attribute].(string)
		if len(row.Problems) > 0 {
			reject(row.N, key, row.Problems)
			continue
		}
		if probs := d.Check(row.Data, classifiers); len(probs) > 0 {
			reject(row.N, key, probs)
			continue
		}
		if _, dup := seen[key]; dup {
			reject(row.N, key, []FieldProblem{{"/" + d.Key.Attribute, "key.duplicate"}})
			continue
		}
		seen[key] = struct{}{}
		b, err := encodeRecord(nil, row.Data)
		if err != nil {
			reject(row.N, key, []FieldProblem{{"", "format"}})
			continue
		}
		batch = append(batch, pending{row: row.N, key: key, data: b})
		if len(batch) >= importBatch {
			select {
			case batches <- batch:
			case <-ctx.Done():
				return finish(ctx.Err())
			}
			batch = make([]pending, 0, importBatch)
		}
	}
	if len(batch) > 0 {
		batches <- batch
	}
	return finish(nil)
}

type pending struct {
	row  int
	key  string
	data []byte
}

// writeBatch writes the batch's rows whose keys the registry does not hold
// yet, in one transaction; the others are rejected as duplicates.
func (s *Store) writeBatch(ctx context.Context, d *Definition, batch []pending, o ImportOptions, rep *ImportReport) error {
	// First without looking for keys the registry already holds (an
	// initial load has none, and ten thousand index probes cost as much as
	// the copy); a key that exists fails the copy, and the batch is tried
	// again with the probe.
	probe := false
	for attempt := 0; ; attempt++ {
		written, dups, err := s.tryBatch(ctx, d, batch, o, probe)
		var pgErr *pgconn.PgError
		if err != nil && errors.As(err, &pgErr) && pgErr.Code == "23505" && attempt < 3 {
			probe = true // a key the registry holds, perhaps created meanwhile: check again
			continue
		}
		if err != nil {
			return err
		}
		rep.Imported += written
		for _, p := range dups {
			rep.reject(p.row, p.key, []FieldProblem{{"/" + d.Key.Attribute, "key.duplicate"}})
		}
		return nil
	}
}

func (s *Store) tryBatch(ctx context.Context, d *Definition, batch []pending, o ImportOptions, probe bool) (int, []pending, error) {
	now := s.clock.Now()
	valid := o.ValidFrom
	if valid.IsZero() {
		valid = now
	}
	var dups []pending
	written := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if !probe {
			var err error
			written, err = s.copyBatch(ctx, tx, d, batch, o, now, valid)
			return err
		}
		keys := make([]string, len(batch))
		for i, p := range batch {
			keys[i] = p.key
		}
		// A scalar subquery per key: always an index probe, whatever the
		// planner thinks of the table's size.
		rows, err := tx.Query(ctx, `SELECT k.key FROM unnest($2::text[]) AS k(key)
			WHERE (SELECT true FROM registry_record_version v WHERE v.registry = $1 AND v.key = k.key AND v.version = 1 LIMIT 1)`, d.Name, keys)
		if err != nil {
			return err
		}
		existing, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		have := make(map[string]bool, len(existing))
		for _, k := range existing {
			have[k] = true
		}
		good := make([]pending, 0, len(batch))
		dups = dups[:0]
		for _, p := range batch {
			if have[p.key] {
				dups = append(dups, p)
			} else {
				good = append(good, p)
			}
		}
		if len(good) == 0 {
			return nil
		}
		written, err = s.copyBatch(ctx, tx, d, good, o, now, valid)
		return err
	})
	return written, dups, err
}

// copyBatch copies good as first versions, with one change event, and
// says how many it wrote.
func (s *Store) copyBatch(ctx context.Context, tx pgx.Tx, d *Definition, good []pending, o ImportOptions, now, valid time.Time) (int, error) {
	if err := checkWritable(ctx, tx, d.Name); err != nil {
		return 0, err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"registry_record_version"},
		[]string{"registry", "key", "version", "op", "data", "valid_from", "recorded_at", "actor", "basis", "application_id", "reason", "def_version"},
		pgx.CopyFromSlice(len(good), func(i int) ([]any, error) {
			return []any{d.Name, good[i].key, 1, OpCreate, good[i].data, valid, now, o.Actor, o.Basis, o.ApplicationID, "import", d.Version}, nil
		})); err != nil {
		return 0, fmt.Errorf("copy record versions: %w", err)
	}
	// One event per batch: an import loads records that already exist in
	// the world (a migration, an initial load), and must not look like a
	// million births to the proactive services.
	created := make([]string, len(good))
	for i, p := range good {
		created[i] = p.key
	}
	if err := outbox.Emit(ctx, tx, now, "registry."+d.Name+".imported", d.Name, ImportEvent{Registry: d.Name, Keys: created,
		ValidFrom: valid.UTC(), Basis: o.Basis, ApplicationID: o.ApplicationID}); err != nil {
		return 0, err
	}
	return len(good), nil
}

// Export writes the current records of a registry as NDJSON (one record's
// data per line, in key order), auditing the read of every record in the
// same transaction. It returns how many it wrote.
func (s *Store) Export(ctx context.Context, registry string, w io.Writer, a Access) (int, error) {
	d, ok := s.Definition(registry)
	if !ok {
		return 0, ErrUnknownRegistry
	}
	if a.Actor == "" || a.Purpose == "" {
		return 0, ErrAccessUnexplained
	}
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		subject := "NULL"
		if d.Subject != "" {
			subject = "CASE WHEN data->>'" + d.Subject + "' ~ '^[0-9]{12}$' THEN data->>'" + d.Subject + "' END"
		}
		suffix := ""
		if a.Object != "" {
			suffix = " for " + a.Object
		}
		// One snapshot for the audit and the rows: repeatable read.
		if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, audit.Insert+`SELECT $3, $4, $5, `+subject+`, 'registry:' || registry || '/' || key || $6, $7, $8
			FROM (`+currentVersions+`) cur WHERE op <> 'cancel'`,
			registry, "", s.clock.Now(), a.Actor, "registry."+registry+".export", suffix, a.Purpose, a.RequestID); err != nil {
			return fmt.Errorf("audit export: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT data::text FROM (`+currentVersions+`) cur WHERE op <> 'cancel' ORDER BY key`, registry, "")
		if err != nil {
			return err
		}
		defer rows.Close()
		bw := bufio.NewWriterSize(w, 64<<10)
		for rows.Next() {
			raw := rows.RawValues()[0]
			bw.Write(raw)
			bw.WriteByte('\n')
			n++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return bw.Flush()
	})
	return n, err
}
