package registry

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/web"
)

// CanWrite reports whether p may change the registry's records: an officer
// of the owner agency with a write role.
func (d *Definition) CanWrite(p identity.Principal) bool {
	for _, r := range d.Access.Write {
		if p.HasRole(d.Owner, r) {
			return true
		}
	}
	return p.Kind == identity.System && slices.Contains(d.Access.SystemWrite, p.Subject)
}

// CanRead reports whether p may read the registry's records whatever their
// subject: writers, the readers named by the definition, the named systems,
// anyone for a public registry.
func (d *Definition) CanRead(p identity.Principal) bool {
	if d.Access.Public || d.CanWrite(p) {
		return true
	}
	for _, rd := range d.Access.Read {
		for _, r := range rd.Roles {
			if p.HasRole(rd.Agency, r) {
				return true
			}
		}
	}
	return p.Kind == identity.System && (slices.Contains(d.Access.Systems, p.Subject) || slices.Contains(d.Access.SystemWrite, p.Subject))
}

// citizenReads reports whether p is a citizen who may read the records
// whose subject they are.
func (d *Definition) citizenReads(p identity.Principal) bool {
	return d.Access.Citizen && d.Subject != "" && p.Kind == identity.Citizen
}

// Routes mounts the registries API on s.
func (s *Store) Routes(srv *web.Server) {
	srv.HandleFunc("GET /api/v1/registries", s.handleList)
	srv.HandleFunc("GET /api/v1/registries/{registry}", s.handleDefinition)
	srv.HandleFunc("GET /api/v1/registries/{registry}/records", s.handleSearch)
	srv.HandleFunc("POST /api/v1/registries/{registry}/records", s.handleCreate)
	srv.HandleFunc("GET /api/v1/registries/{registry}/records/{key}", s.handleGet)
	srv.HandleFunc("PUT /api/v1/registries/{registry}/records/{key}", s.handleUpdate)
	srv.HandleFunc("POST /api/v1/registries/{registry}/records/{key}/cancel", s.handleCancel)
	srv.HandleFunc("GET /api/v1/registries/{registry}/records/{key}/history", s.handleHistory)
	srv.HandleFunc("GET /api/v1/registries/{registry}/export", s.handleExport)
	srv.HandleFunc("POST /api/v1/registries/{registry}/import", s.handleImport)
	srv.HandleFunc("GET /api/v1/classifiers/{classifier}", s.handleClassifier)
	// A registry name has no hyphen: this path is never a registry's.
	srv.HandleFunc("GET /api/v1/registries/my-data-usage", s.handleMyDataUsage)
}

// DataUsageView is one access to a citizen's data, as they see it.
type DataUsageView struct {
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Object  string    `json:"object"`
	Purpose string    `json:"purpose"`
}

// handleMyDataUsage shows a citizen who read their data, when and why: the
// audit trail's events naming them, newest first.
func (s *Store) handleMyDataUsage(w http.ResponseWriter, r *http.Request) error {
	p, err := identity.Require(r)
	if err != nil {
		return err
	}
	if p.Kind != identity.Citizen {
		return apierr.New(apierr.Forbidden)
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return apierr.New(apierr.Validation, apierr.FieldError{Path: "/limit", Code: apierr.FieldOutOfRange})
		}
		limit = n
	}
	evs, err := audit.ForSubject(r.Context(), s.pool, p.Subject, limit)
	if err != nil {
		return err
	}
	out := make([]DataUsageView, len(evs))
	for i, e := range evs {
		out[i] = DataUsageView{At: e.At.UTC(), Actor: e.Actor, Action: e.Action, Object: e.Object, Purpose: e.Purpose}
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"reads": out})
	return nil
}

// DefinitionView is a registry as the API lists it.
type DefinitionView struct {
	*Definition
	Records int64 `json:"records"`
}

func (s *Store) handleList(w http.ResponseWriter, r *http.Request) error {
	counts, err := s.Counts(r.Context())
	if err != nil {
		return err
	}
	out := []DefinitionView{}
	for _, d := range s.Definitions() {
		out = append(out, DefinitionView{d, counts[d.Name]})
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"registries": out})
	return nil
}

func (s *Store) definition(r *http.Request) (*Definition, error) {
	d, ok := s.Definition(r.PathValue("registry"))
	if !ok {
		return nil, apierr.New(apierr.RegistryNotFound)
	}
	return d, nil
}

func (s *Store) handleDefinition(w http.ResponseWriter, r *http.Request) error {
	d, err := s.definition(r)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, d)
	return nil
}

func (s *Store) handleClassifier(w http.ResponseWriter, r *http.Request) error {
	c, ok := s.Classifiers()[r.PathValue("classifier")]
	if !ok {
		return apierr.New(apierr.ClassifierNotFound)
	}
	web.WriteJSON(w, http.StatusOK, c)
	return nil
}

// reader checks that the caller may read d at all and says why: the
// purpose query parameter is required.
func (s *Store) reader(r *http.Request, d *Definition) (identity.Principal, Access, error) {
	p, err := identity.Require(r)
	if err != nil {
		return p, Access{}, err
	}
	if !d.CanRead(p) && !d.citizenReads(p) {
		return p, Access{}, apierr.New(apierr.Forbidden)
	}
	purpose := strings.TrimSpace(r.URL.Query().Get("purpose"))
	if purpose == "" && p.Kind == identity.Citizen {
		purpose = "citizen's own data"
	}
	if purpose == "" {
		return p, Access{}, apierr.New(apierr.Validation, apierr.FieldError{Path: "/purpose", Code: apierr.FieldRequired})
	}
	if len(purpose) > 500 {
		return p, Access{}, apierr.New(apierr.Validation, apierr.FieldError{Path: "/purpose", Code: apierr.FieldTooLong})
	}
	return p, Access{Actor: p.Actor(), Purpose: purpose, Object: r.URL.Query().Get("object"), RequestID: web.RequestID(r.Context())}, nil
}

// errOwnOnly ends a citizen's read of someone else's record: the
// transaction (its audit event included) rolls back, nothing is shown.
var errOwnOnly = apierr.New(apierr.Forbidden)

func (s *Store) handleGet(w http.ResponseWriter, r *http.Request) error {
	d, err := s.definition(r)
	if err != nil {
		return err
	}
	p, a, err := s.reader(r, d)
	if err != nil {
		return err
	}
	var asOf *time.Time
	if v := r.URL.Query().Get("as_of"); v != "" {
		t, err := parseInstant(v)
		if err != nil {
			return apierr.New(apierr.Validation, apierr.FieldError{Path: "/as_of", Code: apierr.FieldFormat})
		}
		asOf = &t
	}
	var rec Record
	var found bool
	if d.CanRead(p) {
		// The hot path: the audit event is committed in a batch with
		// concurrent reads before the record is sent.
		rec, found, err = s.GetCommitted(r.Context(), d.Name, r.PathValue("key"), asOf, a)
		if err != nil {
			return err
		}
		if !found {
			return apierr.New(apierr.RecordNotFound)
		}
		web.WriteJSON(w, http.StatusOK, rec)
		return nil
	}
	// A citizen: the read and its audit event in one transaction, rolled
	// back when the record is not theirs.
	err = pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) error {
		rec, found, err = s.Get(r.Context(), tx, d.Name, r.PathValue("key"), asOf, a)
		if err != nil {
			return err
		}
		if !d.CanRead(p) && (!found || !p.IsCitizen(subjectOf(d, rec.Data))) {
			return errOwnOnly
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !found {
		return apierr.New(apierr.RecordNotFound)
	}
	web.WriteJSON(w, http.StatusOK, rec)
	return nil
}

// parseInstant reads an RFC 3339 instant or a date (the end of that day in
// UTC+5, Kazakhstan's time).
func parseInstant(v string) (time.Time, error) {
	v = strings.Replace(v, " ", "+", 1)
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, err
	}
	return t.Add(24*time.Hour - 5*time.Hour - time.Nanosecond), nil
}

func (s *Store) handleHistory(w http.ResponseWriter, r *http.Request) error {
	d, err := s.definition(r)
	if err != nil {
		return err
	}
	p, a, err := s.reader(r, d)
	if err != nil {
		return err
	}
	var recs []Record
	err = pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) error {
		recs, err = s.History(r.Context(), tx, d.Name, r.PathValue("key"), a)
		if err != nil {
			return err
		}
		if !d.CanRead(p) && (len(recs) == 0 || !p.IsCitizen(subjectOf(d, recs[len(recs)-1].Data))) {
			return errOwnOnly
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return apierr.New(apierr.RecordNotFound)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"registry": d.Name, "key": r.PathValue("key"), "versions": recs})
	return nil
}

// SearchView is a page of search results.
type SearchView struct {
	Records []Record `json:"records"`
	Next    string   `json:"next,omitempty"`
}

func (s *Store) handleSearch(w http.ResponseWriter, r *http.Request) error {
	d, err := s.definition(r)
	if err != nil {
		return err
	}
	p, a, err := s.reader(r, d)
	if err != nil {
		return err
	}
	q := Query{Equal: map[string]any{}}
	var fields []apierr.FieldError
	for name, vals := range r.URL.Query() {
		switch name {
		case "purpose", "object":
			continue
		case "after":
			q.After = vals[0]
		case "limit":
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 1 || n > MaxPage {
				fields = append(fields, apierr.FieldError{Path: "/limit", Code: apierr.FieldOutOfRange})
			}
			q.Limit = n
		case "cancelled":
			q.Cancelled = vals[0] == "true"
		default:
			attr, ok := d.Attr(name)
			if !ok {
				fields = append(fields, apierr.FieldError{Path: "/" + truncate(name, 64), Code: apierr.FieldUnknown})
				continue
			}
			v, ok := cellValue(vals[0], attr.Schema)
			if !ok {
				fields = append(fields, apierr.FieldError{Path: "/" + name, Code: apierr.FieldType})
				continue
			}
			q.Equal[name] = v
		}
	}
	if len(fields) > 0 {
		return apierr.New(apierr.Validation, fields...)
	}
	if !d.CanRead(p) {
		// A citizen searches only their own records.
		q.Equal[d.Subject] = p.Subject
	}
	var recs []Record
	var next string
	err = pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) error {
		recs, next, err = s.Search(r.Context(), tx, d.Name, q, a)
		return err
	})
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []Record{}
	}
	web.WriteJSON(w, http.StatusOK, SearchView{Records: recs, Next: next})
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (s *Store) handleExport(w http.ResponseWriter, r *http.Request) error {
	d, err := s.definition(r)
	if err != nil {
		return err
	}
	p, a, err := s.reader(r, d)
	if err != nil {
		return err
	}
	if !d.CanRead(p) {
		return apierr.New(apierr.Forbidden)
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	_, err = s.Export(r.Context(), d.Name, w, a)
	return err
}

// ChangeRequest is the body of creates, updates, corrections and
// cancellations.
type ChangeRequest struct {
	Data map[string]any `json:"data"`
	// Correction marks an update that fixes an error rather than recording
	// a change in the world.
	Correction    bool       `json:"correction"`
	ValidFrom     *time.Time `json:"valid_from"`
	Basis         string     `json:"basis"`
	ApplicationID string     `json:"application_id"`
	Reason        string     `json:"reason"`
}

func (s *Store) writer(r *http.Request) (*Definition, identity.Principal, error) {
	d, err := s.definition(r)
	if err != nil {
		return nil, identity.Principal{}, err
	}
	p, err := identity.Require(r)
	if err != nil {
		return nil, p, err
	}
	if !d.CanWrite(p) {
		return nil, p, apierr.New(apierr.Forbidden)
	}
	return d, p, nil
}

func (s *Store) change(w http.ResponseWriter, r *http.Request, op, key string, status int) error {
	d, p, err := s.writer(r)
	if err != nil {
		return err
	}
	var req ChangeRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	var fields []apierr.FieldError
	if strings.TrimSpace(req.Basis) == "" && strings.TrimSpace(req.ApplicationID) == "" {
		fields = append(fields, apierr.FieldError{Path: "/basis", Code: apierr.FieldRequired})
	}
	for _, f := range []struct{ path, v string }{{"/basis", req.Basis}, {"/application_id", req.ApplicationID}, {"/reason", req.Reason}} {
		if len(f.v) > 1000 {
			fields = append(fields, apierr.FieldError{Path: f.path, Code: apierr.FieldTooLong})
		}
	}
	if op != OpCancel && req.Data == nil {
		fields = append(fields, apierr.FieldError{Path: "/data", Code: apierr.FieldRequired})
	}
	if op == OpCreate && req.Data != nil {
		key, _ = req.Data[d.Key.Attribute].(string)
	}
	if op != OpCancel && req.Data != nil {
		if _, ok := req.Data[d.Key.Attribute]; !ok && key != "" {
			req.Data[d.Key.Attribute] = key
		}
		for _, p := range d.Check(req.Data, s.Classifiers()) {
			fields = append(fields, apierr.FieldError{Path: "/data" + p.Path, Code: apierr.Code(p.Code)})
		}
	}
	if len(fields) > 0 {
		return apierr.New(apierr.Validation, fields...)
	}
	if op == OpUpdate && req.Correction {
		op = OpCorrect
	}
	c := Change{Registry: d.Name, Key: key, Op: op, Data: req.Data, Actor: p.Actor(), Basis: req.Basis,
		ApplicationID: req.ApplicationID, Reason: req.Reason}
	if req.ValidFrom != nil {
		c.ValidFrom = *req.ValidFrom
	}
	rec, err := s.ApplyNow(r.Context(), c)
	if err != nil {
		return publicError(err)
	}
	web.WriteJSON(w, status, rec)
	return nil
}

// publicError maps the store's errors to public ones.
func publicError(err error) error {
	var inv *InvalidError
	switch {
	case errors.As(err, &inv):
		fields := make([]apierr.FieldError, len(inv.Problems))
		for i, p := range inv.Problems {
			fields[i] = apierr.FieldError{Path: "/data" + p.Path, Code: apierr.Code(p.Code)}
		}
		return apierr.New(apierr.Validation, fields...)
	case errors.Is(err, ErrNotFound):
		return apierr.New(apierr.RecordNotFound)
	case errors.Is(err, ErrExists):
		return apierr.New(apierr.RecordExists)
	case errors.Is(err, ErrCancelled):
		return apierr.New(apierr.RecordCancelled)
	case errors.Is(err, ErrUnknownRegistry):
		return apierr.New(apierr.RegistryNotFound)
	}
	return err
}

func (s *Store) handleCreate(w http.ResponseWriter, r *http.Request) error {
	return s.change(w, r, OpCreate, "", http.StatusCreated)
}

func (s *Store) handleUpdate(w http.ResponseWriter, r *http.Request) error {
	return s.change(w, r, OpUpdate, r.PathValue("key"), http.StatusOK)
}

func (s *Store) handleCancel(w http.ResponseWriter, r *http.Request) error {
	return s.change(w, r, OpCancel, r.PathValue("key"), http.StatusOK)
}

// MaxImportBytes bounds an import through the API.
const MaxImportBytes = 1 << 30

func (s *Store) handleImport(w http.ResponseWriter, r *http.Request) error {
	d, p, err := s.writer(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	format := q.Get("format")
	var fields []apierr.FieldError
	if format != FormatCSV && format != FormatNDJSON {
		fields = append(fields, apierr.FieldError{Path: "/format", Code: apierr.FieldOneOf})
	}
	if q.Get("basis") == "" && q.Get("application_id") == "" {
		fields = append(fields, apierr.FieldError{Path: "/basis", Code: apierr.FieldRequired})
	}
	if len(fields) > 0 {
		return apierr.New(apierr.Validation, fields...)
	}
	rows, err := NewRowReader(http.MaxBytesReader(w, r.Body, MaxImportBytes), format, d)
	if err != nil {
		return headerError(err)
	}
	rep, err := s.Import(r.Context(), d.Name, rows, ImportOptions{Actor: p.Actor(), Basis: q.Get("basis"), ApplicationID: q.Get("application_id")})
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return apierr.New(apierr.BodyTooLarge)
		}
		if errors.Is(err, context.Canceled) {
			return err
		}
		return apierr.Wrap(apierr.ImportBroken, err)
	}
	web.WriteJSON(w, http.StatusOK, rep)
	return nil
}

func headerError(err error) error {
	var he *HeaderError
	if errors.As(err, &he) {
		fields := make([]apierr.FieldError, len(he.Problems))
		for i, p := range he.Problems {
			fields[i] = apierr.FieldError{Path: "/header" + p.Path, Code: apierr.Code(p.Code)}
		}
		e := apierr.New(apierr.ImportBroken, fields...)
		return e
	}
	return apierr.Wrap(apierr.ImportBroken, err)
}
