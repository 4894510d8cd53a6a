package registry

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/web"
)

// ChangeView is one committed change of a record as the change feed tells it:
// what changed, not the values (a subscriber reads the record, audited,
// when it needs them).
type ChangeView struct {
	Key           string    `json:"key"`
	Version       int       `json:"version,omitempty"` // absent for imported records: their first version
	Op            string    `json:"op"`
	ValidFrom     time.Time `json:"valid_from"`
	Changed       []string  `json:"changed,omitempty"`
	Basis         string    `json:"basis,omitempty"`
	ApplicationID string    `json:"application_id,omitempty"`
	RecordedAt    time.Time `json:"recorded_at"`
	// Imported marks a record loaded by a bulk import: it existed in the
	// world before (a migration, an initial load), unlike a birth.
	Imported bool `json:"imported,omitempty"`
}

// ChangeFeed is a page of a registry's change feed.
type ChangeFeed struct {
	Changes []ChangeView `json:"changes"`
	// Next is the cursor to ask with next time (?after=); it is given even
	// when Changes is empty.
	Next string `json:"next"`
}

// Page sizes of the change feed, in events (an import's event names many
// records).
const (
	defaultChangePage = 100
	maxChangePage     = 1000
)

// handleChanges serves GET /api/v1/registries/{registry}/changes: the
// registry's committed changes in commit order, for the systems of the
// agencies that may read it, so that services and proactive rules can
// follow a registry without polling its records. That a person's record
// changed is itself their data: each change returned is audited as a read.
func (s *Store) handleChanges(w http.ResponseWriter, r *http.Request) error {
	d, err := s.definition(r)
	if err != nil {
		return err
	}
	p, a, err := s.reader(r, d)
	if err != nil {
		return err
	}
	if !d.CanRead(p) {
		return apierr.New(apierr.Forbidden) // a citizen's or a consent's reads are point reads
	}
	q := r.URL.Query()
	var fields []apierr.FieldError
	after, err := outbox.ParseCursor(q.Get("after"))
	if err != nil {
		fields = append(fields, apierr.FieldError{Path: "/after", Code: apierr.FieldFormat})
	}
	limit := defaultChangePage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxChangePage {
			fields = append(fields, apierr.FieldError{Path: "/limit", Code: apierr.FieldOutOfRange})
		}
		limit = n
	}
	if len(fields) > 0 {
		return apierr.New(apierr.Validation, fields...)
	}
	events, next, err := outbox.Read(r.Context(), s.pool, []string{"registry." + d.Name + ".changed", "registry." + d.Name + ".imported"}, after, limit)
	if err != nil {
		return err
	}
	out := ChangeFeed{Changes: []ChangeView{}, Next: next.String()}
	for _, e := range events {
		out.Changes = append(out.Changes, changesOf(e)...)
	}
	keys := make([]string, len(out.Changes))
	subjects := make([]string, len(out.Changes))
	for i, c := range out.Changes {
		keys[i] = c.Key
		if d.Subject == d.Key.Attribute {
			subjects[i] = keySubject(c.Key)
		}
	}
	err = pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) error {
		return s.auditReads(r.Context(), tx, d, "registry."+d.Name+".changes", a, keys, subjects)
	})
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

// changesOf turns a change or import event into the feed's changes; an
// event it cannot read (written by an older version) gives none.
func changesOf(e outbox.Event) []ChangeView {
	var c ChangeEvent
	if json.Unmarshal(e.Payload, &c) == nil && c.Key != "" {
		return []ChangeView{{Key: c.Key, Version: c.Version, Op: c.Op, ValidFrom: c.ValidFrom, Changed: c.Changed,
			Basis: c.Basis, ApplicationID: c.ApplicationID, RecordedAt: e.CreatedAt}}
	}
	var imp ImportEvent
	if json.Unmarshal(e.Payload, &imp) != nil {
		return nil
	}
	out := make([]ChangeView, len(imp.Keys))
	for i, k := range imp.Keys {
		out[i] = ChangeView{Key: k, Op: OpCreate, ValidFrom: imp.ValidFrom, Basis: imp.Basis, ApplicationID: imp.ApplicationID,
			RecordedAt: e.CreatedAt, Imported: true}
	}
	return out
}
