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
	srv.HandleFunc("POST /api/v1/registries", s.handlePublish)
	srv.HandleFunc("GET /api/v1/registries/{registry}", s.handleDefinition)
	srv.HandleFunc("GET /api/v1/registries/{registry}/records", s.handleSearch)
	srv.HandleFunc("POST /api/v1/registries/{registry}/records", s.handleCreate)
	srv.HandleFunc("GET /api/v1/registries/{registry}/records/{key}", s.handleGet)
	srv.HandleFunc("PUT /api/v1/registries/{registry}/records/{key}", s.handleUpdate)
	srv.HandleFunc("POST /api/v1/registries/{registry}/records/{key}/cancel", s.handleCancel)
	srv.HandleFunc("GET /api/v1/registries/{registry}/records/{key}/history", s.handleHistory)
	srv.HandleFunc("GET /api/v1/registries/{registry}/export", s.handleExport)
	srv.HandleFunc("GET /api/v1/registries/{registry}/changes", s.handleChanges)
	srv.HandleFunc("POST /api/v1/registries/{registry}/import", s.handleImport)
	srv.HandleFunc("GET /api/v1/classifiers/{classifier}", s.handleClassifier)
	// A registry name has no hyphen: this path is never a registry's.
	srv.HandleFunc("GET /api/v1/registries/my-data-usage", s.handleMyDataUsage)
}

// ConsentChecker is the consent ledger as the registry API uses it; the
// composition root wires internal/consent. A reader with no role-based
// legal basis (a bank's system, an agency not in access.read) may read the
// attributes of a person's record that the person consented to.
type ConsentChecker interface {
	// CheckRead returns the consent id covering the use, or the refusal
	// (an *apierr.Error: consent.missing, consent.expired,
	// consent.revoked), which the checker has already recorded.
	CheckRead(ctx context.Context, tx pgx.Tx, q ConsentQuery) (consentID string, err error)
	// ExplainUsage reads the consent ledger's audit events (consent.used,
	// consent.denied, consent.granted ...) for "who used my data".
	ExplainUsage(e audit.Event) (UsageDetail, bool)
}

// ConsentQuery is one consent-based read.
type ConsentQuery struct {
	Subject   string
	Reader    identity.Principal
	Items     []string // "registry.attribute"
	Purpose   string
	Object    string
	RequestID string
}

// UsageDetail is what the consent ledger tells of one of its events.
type UsageDetail struct {
	ConsentID string
	Items     []string
	Channel   string
	Denied    string // the refusal's code
}

// SetConsent lets readers without a legal basis read with a consent; nil
// (the default) refuses them.
func (s *Store) SetConsent(c ConsentChecker) {
	s.mu.Lock()
	s.consent = c
	s.mu.Unlock()
}

func (s *Store) consentChecker() ConsentChecker {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.consent
}

// DataUsageView is one access to a citizen's data, as they see it: who,
// what (action, object, items), when, why (purpose), and on what basis (a
// legal basis, the citizen's own request, or a consent id); outcome is
// "denied" for an attempt that was refused.
type DataUsageView struct {
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	Object    string    `json:"object"`
	Purpose   string    `json:"purpose"`
	Items     []string  `json:"items,omitempty"`
	Basis     string    `json:"basis,omitempty"`
	ConsentID string    `json:"consent_id,omitempty"`
	Outcome   string    `json:"outcome"`
	Denied    string    `json:"denied_code,omitempty"`
}

// explain fills the items, basis and outcome of an audit event.
func (s *Store) explain(e audit.Event, subject string) DataUsageView {
	v := DataUsageView{At: e.At.UTC(), Actor: e.Actor, Action: e.Action, Object: e.Object, Purpose: e.Purpose, Outcome: "allowed"}
	if c := s.consentChecker(); c != nil && strings.HasPrefix(e.Action, "consent.") {
		if u, ok := c.ExplainUsage(e); ok {
			v.Items, v.ConsentID, v.Denied = u.Items, u.ConsentID, u.Denied
			if u.ConsentID != "" && e.Action == "consent.used" {
				v.Basis = "consent" // requests, grants and revocations are about the consent, not a use
			}
			if u.Denied != "" {
				v.Outcome, v.Basis = "denied", ""
			}
			return v
		}
	}
	_, viaConsent, _ := strings.Cut(e.Object, " for consent:")
	switch {
	case e.Actor == "citizen:"+subject:
		v.Basis = "own data"
	case e.Actor == "system:process" && (strings.HasPrefix(e.Action, "registry.") || e.Action == "exchange.read"):
		// The engine records a data source's legal basis as the purpose
		// (and, for the exchange, "; service: <id>").
		basis, svc, ok := strings.Cut(e.Purpose, "; service: ")
		v.Basis = basis
		if ok {
			v.Items = []string{"service:" + svc}
		} else {
			name, _, _ := strings.Cut(strings.TrimPrefix(e.Action, "registry."), ".")
			v.Items = []string{name}
		}
	case strings.HasPrefix(e.Action, "registry.") && viaConsent != "":
		v.ConsentID, _, _ = strings.Cut(viaConsent, " ")
		v.Basis = "consent"
		name, _, _ := strings.Cut(strings.TrimPrefix(e.Action, "registry."), ".")
		v.Items = []string{name}
	case strings.HasPrefix(e.Action, "registry."):
		name, _, _ := strings.Cut(strings.TrimPrefix(e.Action, "registry."), ".")
		if d, ok := s.Definition(name); ok {
			v.Items = []string{name}
			v.Basis = d.Basis
		}
	case e.Action == "exchange.personal_data":
		// An exchange gateway's report of a call on a legal basis (the
		// purpose carries it): the object is "service:<service id>".
		v.Items = []string{e.Object}
	}
	if _, basis, ok := strings.Cut(e.Purpose, "(legal basis: "); ok && v.Basis == "" {
		v.Basis = strings.TrimSuffix(basis, ")")
	}
	return v
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
	out, err := s.DataUsage(r.Context(), p, limit)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"reads": out})
	return nil
}

// DataUsage is "who used my data" for a citizen: the audit trail's events
// naming them, newest first, at most limit, each explained (items, basis,
// consent, outcome). Anyone but a citizen gets auth.forbidden.
func (s *Store) DataUsage(ctx context.Context, who identity.Principal, limit int) ([]DataUsageView, error) {
	if who.Kind != identity.Citizen {
		return nil, apierr.New(apierr.Forbidden)
	}
	evs, err := audit.ForSubject(ctx, s.pool, who.Subject, limit)
	if err != nil {
		return nil, err
	}
	out := make([]DataUsageView, len(evs))
	for i, e := range evs {
		out[i] = s.explain(e, who.Subject)
	}
	return out, nil
}

// DefinitionView is a registry as the API lists it.
type DefinitionView struct {
	*Definition
	Records int64 `json:"records"`
	// DatabaseID is the registry's stable number (the GovStack Database
	// API's id); Archived: it takes no new writes.
	DatabaseID int64 `json:"database_id,omitempty"`
	Archived   bool  `json:"archived,omitempty"`
}

func (s *Store) handleList(w http.ResponseWriter, r *http.Request) error {
	counts, err := s.Counts(r.Context())
	if err != nil {
		return err
	}
	out := []DefinitionView{}
	for _, d := range s.Definitions() {
		db, _ := s.DatabaseOf(d.Name)
		out = append(out, DefinitionView{d, counts[d.Name], db.ID, db.ArchivedAt != nil})
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
	if !d.CanRead(p) && !d.citizenReads(p) && !s.consentReads(d, p) {
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

// readRequest is a read of the registry r names, by a caller allowed to
// read it, with the access it will be audited as.
func (s *Store) readRequest(r *http.Request) (*Definition, identity.Principal, Access, error) {
	d, err := s.definition(r)
	if err != nil {
		return nil, identity.Principal{}, Access{}, err
	}
	p, a, err := s.reader(r, d)
	return d, p, a, err
}

// errOwnOnly ends a citizen's read of someone else's record: the
// transaction (its audit event included) rolls back, nothing is shown.
var errOwnOnly = apierr.New(apierr.Forbidden)

func (s *Store) handleGet(w http.ResponseWriter, r *http.Request) error {
	d, p, a, err := s.readRequest(r)
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
	if s.consentReads(d, p) && !d.CanRead(p) {
		return s.consentGet(w, r, d, p, a, asOf)
	}
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
	d, p, a, err := s.readRequest(r)
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
	d, p, a, err := s.readRequest(r)
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
	if !d.CanRead(p) && p.Kind != identity.Citizen {
		return apierr.New(apierr.Forbidden) // consents open point reads only
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
	d, p, a, err := s.readRequest(r)
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
	case errors.Is(err, ErrArchived):
		return apierr.New(apierr.RegistryArchived)
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
		if errors.Is(err, ErrArchived) {
			return apierr.New(apierr.RegistryArchived)
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

// errPeek rolls back the read that only finds a record's subject.
var errPeek = errors.New("peek")

// consentReads reports whether p may try a read with a consent: not a
// citizen, a registry of persons' data, a consent ledger wired.
func (s *Store) consentReads(d *Definition, p identity.Principal) bool {
	return p.Kind != identity.Citizen && p.Kind != "" && d.Subject != "" && d.HasPersonalData() && s.consentChecker() != nil
}

// consentGet is a point read by a reader without a legal basis: the
// attributes asked for (?fields=a,b; default all) must be covered by the
// person's consent to the reader for the purpose. The read, its audit
// event and the consent's use commit together; a refusal rolls the read
// back and is recorded by the ledger (its own transaction). Only the
// attributes asked for are answered.
func (s *Store) consentGet(w http.ResponseWriter, r *http.Request, d *Definition, p identity.Principal, a Access, asOf *time.Time) error {
	var fields []string
	if v := r.URL.Query().Get("fields"); v != "" {
		for _, f := range strings.Split(v, ",") {
			if _, ok := d.Attr(f); !ok {
				return apierr.New(apierr.Validation, apierr.FieldError{Path: "/fields", Code: apierr.FieldUnknown})
			}
			fields = append(fields, f)
		}
	} else {
		for _, at := range d.Attributes {
			fields = append(fields, at.Name)
		}
	}
	var items []string
	for _, f := range fields {
		if at, _ := d.Attr(f); at.Personal == PDPersonal || at.Personal == PDSensitive {
			items = append(items, d.Name+"."+f)
		}
	}
	key := r.PathValue("key")
	// Whose record: the key says it, or (a registry whose subject is
	// another attribute) a first read, rolled back, shows nothing yet.
	subject := ""
	if d.Subject == d.Key.Attribute {
		subject = keySubject(key)
	} else {
		err := pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) error {
			rec, _, err := s.Get(r.Context(), tx, d.Name, key, asOf, a)
			subject = subjectOf(d, rec.Data)
			if err == nil {
				err = errPeek
			}
			return err
		})
		if !errors.Is(err, errPeek) {
			return err
		}
	}
	if subject == "" {
		// Nobody's consent can open it (a record without a subject, or a
		// missing one whose key names nobody): not found, as for anyone.
		return apierr.New(apierr.RecordNotFound)
	}
	var rec Record
	var found bool
	err := pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) error {
		if len(items) > 0 {
			id, err := s.consentChecker().CheckRead(r.Context(), tx, ConsentQuery{Subject: subject, Reader: p, Items: items,
				Purpose: a.Purpose, Object: a.Object, RequestID: a.RequestID})
			if err != nil {
				return err
			}
			// The read's audit event names the consent: "... for consent:<id>".
			a.Object = strings.TrimSpace("consent:" + id + " " + a.Object)
		}
		var err error
		rec, found, err = s.Get(r.Context(), tx, d.Name, key, asOf, a)
		if err != nil {
			return err
		}
		if found && subjectOf(d, rec.Data) != subject {
			return errOwnOnly // the record changed hands meanwhile
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !found {
		return apierr.New(apierr.RecordNotFound)
	}
	data := make(map[string]any, len(fields))
	for _, f := range fields {
		if v, ok := rec.Data[f]; ok {
			data[f] = v
		}
	}
	rec.Data = data
	web.WriteJSON(w, http.StatusOK, rec)
	return nil
}
