package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/web"
)

// GovStackPrefix is where the GovStack Digital Registries Data API is
// served.
const GovStackPrefix = "/gs/registries"

// imClientHeader names the calling system: INSTANCE/CLASS/MEMBER/SUBSYSTEM.
const imClientHeader = "Information-Mediator-Client"

var (
	imClientRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}/[A-Za-z0-9._-]{1,64}/[A-Za-z0-9._-]{1,64}/[A-Za-z0-9._-]{1,64}$`)
	gsIDRE     = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
)

// gsBasis is the basis written on records changed through the GovStack API.
const gsBasis = "GovStack Digital Registries API"

// GovStackRoutes mounts the GovStack Digital Registries Data API (1.3.0)
// under GovStackPrefix on the same registries: {registryName}/{versionNumber}
// is a registry and its definition's version. The calling system is named
// by the Information-Mediator-Client header, set by the mediator in front
// of the platform; it reads the registries that list it in access.systems
// and writes those listing it in access.system_write. Every read is audited
// as any other. Both spellings of the renamed endpoints are served. The
// Database API (govstack_db.go) is mounted beside it.
func (s *Store) GovStackRoutes(srv *web.Server) {
	p := GovStackPrefix + "/data/{registry}/{version}"
	h := func(pattern string, f func(w http.ResponseWriter, r *http.Request, d *Definition, who identity.Principal) error) {
		srv.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) error {
			return s.gsWrap(w, r, f)
		})
	}
	h("GET "+p, s.gsList)
	h("GET "+p+"/{$}", s.gsList)
	h("POST "+p+"/create", s.gsCreate)
	h("POST "+p+"/exists", s.gsExists)
	h("POST "+p+"/read", s.gsRead)
	h("PUT "+p+"/update", s.gsUpdate)
	h("PUT "+p+"/updateEntries", s.gsUpdateEntries)
	h("PUT "+p+"/update-entries", s.gsUpdateEntries)
	h("POST "+p+"/updateOrCreate", s.gsUpdateOrCreate)
	h("POST "+p+"/update-or-create", s.gsUpdateOrCreate)
	h("DELETE "+p+"/{id}/delete", s.gsDelete)
	h("GET "+p+"/{uuid}/readValue/{file}", s.gsReadValue)
	h("GET "+p+"/{uuid}/read-value/{file}", s.gsReadValue)
	srv.HandleFunc("GET "+GovStackPrefix+"/data/mypersonalDataUsage", s.gsPersonalDataUsage)
	srv.HandleFunc("GET "+GovStackPrefix+"/data/MyPersonalDataUsage/1.0", s.gsPersonalDataUsage)
	s.GovStackDatabaseRoutes(srv)
}

// gsError writes GovStack's error body.
func gsError(w http.ResponseWriter, status int, detail string) error {
	web.WriteJSON(w, status, map[string]string{"detail": detail})
	return nil
}

func gsClient(r *http.Request) (identity.Principal, bool) {
	h := strings.TrimSpace(r.Header.Get(imClientHeader))
	if !imClientRE.MatchString(h) {
		return identity.Principal{}, false
	}
	return identity.Principal{Kind: identity.System, Subject: h}, true
}

func (s *Store) gsWrap(w http.ResponseWriter, r *http.Request, f func(http.ResponseWriter, *http.Request, *Definition, identity.Principal) error) error {
	who, ok := gsClient(r)
	if !ok {
		return gsError(w, http.StatusBadRequest, "the Information-Mediator-Client header must be INSTANCE/CLASS/MEMBER/SUBSYSTEM")
	}
	d, ok := s.Definition(r.PathValue("registry"))
	if !ok || strconv.Itoa(d.Version) != r.PathValue("version") {
		return gsError(w, http.StatusNotFound, "no such registry or version")
	}
	if !d.CanRead(who) {
		return gsError(w, http.StatusForbidden, "this client may not use this registry")
	}
	return f(w, r, d, who)
}

func (s *Store) gsAccess(r *http.Request, who identity.Principal) Access {
	return Access{Actor: who.Actor(), Purpose: gsBasis, RequestID: web.RequestID(r.Context())}
}

// gsBody is the body of the data calls: {query: {content}, write: {content}}.
type gsBody struct {
	Query *struct {
		Content map[string]any `json:"content"`
	} `json:"query"`
	Write *struct {
		Content map[string]any `json:"content"`
	} `json:"write"`
}

func decodeGS(w http.ResponseWriter, r *http.Request, needQuery, needWrite bool) (q, wr map[string]any, err error) {
	var b gsBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, web.MaxBodyBytes))
	if err := dec.Decode(&b); err != nil {
		return nil, nil, errGSBody
	}
	if b.Query != nil {
		q = b.Query.Content
	}
	if b.Write != nil {
		wr = b.Write.Content
	}
	if (needQuery && q == nil) || (needWrite && wr == nil) {
		return nil, nil, errGSBody
	}
	return q, wr, nil
}

var errGSBody = errors.New("bad body")

// gsFind returns the current records matching every field of q, in key
// order, at most limit; each read is audited in tx.
func (s *Store) gsFind(r *http.Request, tx pgx.Tx, d *Definition, q map[string]any, limit int, a Access) ([]Record, error) {
	for k := range q {
		if _, ok := d.Attr(k); !ok {
			return nil, nil // a field the registry lacks matches nothing
		}
	}
	var out []Record
	after := ""
	for {
		recs, next, err := s.Search(r.Context(), tx, d.Name, Query{Equal: q, After: after, Limit: min(MaxPage, limit-len(out))}, a)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		if next == "" || len(out) >= limit {
			return out, nil
		}
		after = next
	}
}

// gsMaxResults bounds a GovStack list: beyond it the caller pages.
const gsMaxResults = 10000

func (s *Store) gsList(w http.ResponseWriter, r *http.Request, d *Definition, who identity.Principal) error {
	q := map[string]any{}
	v := r.URL.Query()
	if f, search := v.Get("filter"), v.Get("search"); f != "" && search != "" {
		q[f] = search
	}
	for k, vals := range v {
		if name, ok := strings.CutPrefix(k, "query."); ok {
			q[name] = vals[0]
		}
	}
	page, _ := strconv.Atoi(v.Get("page"))
	size, _ := strconv.Atoi(v.Get("pageSize"))
	var recs []Record
	err := pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) (err error) {
		recs, err = s.gsFind(r, tx, d, q, gsMaxResults, s.gsAccess(r, who))
		return err
	})
	if err != nil {
		return err
	}
	field := v.Get("filter")
	if field == "" {
		field = d.Key.Attribute
	}
	slices.SortStableFunc(recs, func(a, b Record) int {
		x, y := fmt.Sprint(a.Data[field]), fmt.Sprint(b.Data[field])
		if v.Get("ordering") == "descending" {
			x, y = y, x
		}
		return strings.Compare(x, y)
	})
	results := make([]map[string]any, 0, len(recs))
	for _, rec := range recs {
		results = append(results, rec.Data)
	}
	// next and previous are left out on the first and last pages: the
	// specification's x-nullable is no JSON Schema, null would not validate.
	out := map[string]any{}
	if size > 0 {
		page = max(page, 1)
		from := min((page-1)*size, len(results))
		to := min(from+size, len(results))
		if to < len(results) {
			out["next"] = fmt.Sprintf("%s?page=%d&pageSize=%d", r.URL.Path, page+1, size)
		}
		if page > 1 {
			out["previous"] = fmt.Sprintf("%s?page=%d&pageSize=%d", r.URL.Path, page-1, size)
		}
		results = results[from:to]
	}
	out["count"], out["results"] = len(results), results
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

// gsChange applies one change in tx as the GovStack client.
func (s *Store) gsChange(r *http.Request, tx pgx.Tx, d *Definition, who identity.Principal, op, key string, data map[string]any) (Record, error) {
	if !d.CanWrite(who) {
		return Record{}, errGSForbidden
	}
	return s.Apply(r.Context(), tx, Change{Registry: d.Name, Key: key, Op: op, Data: data, Actor: who.Actor(), Basis: gsBasis,
		ApplicationID: web.RequestID(r.Context())})
}

var errGSForbidden = errors.New("forbidden")

// gsFail answers a failed GovStack write.
func gsFail(w http.ResponseWriter, err error) error {
	var inv *InvalidError
	switch {
	case errors.Is(err, errGSBody):
		return gsError(w, http.StatusBadRequest, "the body must be JSON with query.content and/or write.content")
	case errors.Is(err, errGSForbidden):
		return gsError(w, http.StatusForbidden, "this client may not change this registry")
	case errors.As(err, &inv):
		var parts []string
		for _, p := range inv.Problems {
			parts = append(parts, p.Path+": "+p.Code)
		}
		return gsError(w, http.StatusBadRequest, "invalid record: "+strings.Join(parts, ", "))
	case errors.Is(err, ErrExists):
		return gsError(w, http.StatusConflict, "a record with this key exists")
	case errors.Is(err, errGSNotFound):
		return gsError(w, http.StatusNotFound, "no record found")
	case errors.Is(err, ErrArchived):
		return gsError(w, http.StatusConflict, "the registry is archived: it takes no new records or changes")
	}
	return err
}

var errGSNotFound = errors.New("no record found")

// newKey gives a created record its key when the content lacks one.
func newKey(d *Definition, content map[string]any) string {
	if k, ok := content[d.Key.Attribute].(string); ok && k != "" {
		return k
	}
	k := uuid.Must(uuid.NewV7()).String()
	content[d.Key.Attribute] = k
	return k
}

func (s *Store) gsCreate(w http.ResponseWriter, r *http.Request, d *Definition, who identity.Principal) error {
	_, content, err := decodeGS(w, r, false, true)
	if err != nil {
		return gsFail(w, err)
	}
	var rec Record
	err = pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) (err error) {
		rec, err = s.gsChange(r, tx, d, who, OpCreate, newKey(d, content), content)
		return err
	})
	if err != nil {
		return gsFail(w, err)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"content": rec.Data})
	return nil
}

func (s *Store) gsRead(w http.ResponseWriter, r *http.Request, d *Definition, who identity.Principal) error {
	q, _, err := decodeGS(w, r, true, false)
	if err != nil {
		return gsFail(w, err)
	}
	var recs []Record
	err = pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) (err error) {
		recs, err = s.gsFind(r, tx, d, q, 1, s.gsAccess(r, who))
		return err
	})
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return gsError(w, http.StatusNotFound, "no record found")
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"content": recs[0].Data})
	return nil
}

func (s *Store) gsExists(w http.ResponseWriter, r *http.Request, d *Definition, who identity.Principal) error {
	q, _, err := decodeGS(w, r, true, false)
	if err != nil {
		return gsFail(w, err)
	}
	var recs []Record
	err = pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) (err error) {
		recs, err = s.gsFind(r, tx, d, q, 1, s.gsAccess(r, who))
		return err
	})
	if err != nil {
		return err
	}
	ans := map[string]any{"status": len(recs) > 0, "message": "Object not found from database"}
	if len(recs) > 0 {
		ans["message"] = "Object found from database"
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"answer": ans})
	return nil
}

func merge(base, with map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(with))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range with {
		out[k] = v
	}
	return out
}

// gsUpdateMatches updates the first (or every) record matching q with the
// fields of write, in one transaction; it returns the new versions.
func (s *Store) gsUpdateMatches(r *http.Request, d *Definition, who identity.Principal, q, write map[string]any, all bool) ([]Record, error) {
	var out []Record
	limit := 1
	if all {
		limit = gsMaxResults
	}
	err := pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) error {
		out = nil
		if !d.CanWrite(who) {
			return errGSForbidden
		}
		recs, err := s.gsFind(r, tx, d, q, limit, s.gsAccess(r, who))
		if err != nil {
			return err
		}
		for _, rec := range recs {
			next := merge(rec.Data, write)
			next[d.Key.Attribute] = rec.Key
			nv, err := s.gsChange(r, tx, d, who, OpUpdate, rec.Key, next)
			if err != nil {
				return err
			}
			out = append(out, nv)
		}
		return nil
	})
	return out, err
}

func (s *Store) gsUpdate(w http.ResponseWriter, r *http.Request, d *Definition, who identity.Principal) error {
	q, write, err := decodeGS(w, r, true, true)
	if err != nil {
		return gsFail(w, err)
	}
	recs, err := s.gsUpdateMatches(r, d, who, q, write, false)
	if err != nil {
		return gsFail(w, err)
	}
	if len(recs) == 0 {
		return gsError(w, http.StatusNotFound, "no record found")
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"content": recs[0].Data})
	return nil
}

func (s *Store) gsUpdateEntries(w http.ResponseWriter, r *http.Request, d *Definition, who identity.Principal) error {
	q, write, err := decodeGS(w, r, true, true)
	if err != nil {
		return gsFail(w, err)
	}
	recs, err := s.gsUpdateMatches(r, d, who, q, write, true)
	if err != nil {
		return gsFail(w, err)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"count": len(recs)})
	return nil
}

func (s *Store) gsUpdateOrCreate(w http.ResponseWriter, r *http.Request, d *Definition, who identity.Principal) error {
	q, write, err := decodeGS(w, r, true, true)
	if err != nil {
		return gsFail(w, err)
	}
	recs, err := s.gsUpdateMatches(r, d, who, q, write, false)
	if err == nil && len(recs) == 0 {
		err = pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) error {
			rec, err := s.gsChange(r, tx, d, who, OpCreate, newKey(d, write), write)
			recs = []Record{rec}
			return err
		})
	}
	if err != nil {
		return gsFail(w, err)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"content": recs[0].Data})
	return nil
}

// gsDelete cancels the records whose key, or whose ID field, is id: their
// history stays.
func (s *Store) gsDelete(w http.ResponseWriter, r *http.Request, d *Definition, who identity.Principal) error {
	id := r.PathValue("id")
	err := pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) error {
		if !d.CanWrite(who) {
			return errGSForbidden
		}
		keys := map[string]bool{}
		var n int
		if err := tx.QueryRow(r.Context(), `SELECT count(*) FROM (SELECT op FROM registry_record_version
			WHERE registry = $1 AND key = $2 ORDER BY version DESC LIMIT 1) v WHERE op <> 'cancel'`, d.Name, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			keys[id] = true
		}
		if _, ok := d.Attr("ID"); ok {
			recs, err := s.gsFind(r, tx, d, map[string]any{"ID": id}, gsMaxResults, s.gsAccess(r, who))
			if err != nil {
				return err
			}
			for _, rec := range recs {
				keys[rec.Key] = true
			}
		}
		if len(keys) == 0 {
			return errGSNotFound
		}
		for _, k := range sortedKeys(keys) {
			if _, err := s.gsChange(r, tx, d, who, OpCancel, k, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return gsFail(w, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Store) gsReadValue(w http.ResponseWriter, r *http.Request, d *Definition, who identity.Principal) error {
	field, ext, ok := strings.Cut(r.PathValue("file"), ".")
	if !ok || ext != "json" {
		return gsError(w, http.StatusBadRequest, "ask for {field}.json")
	}
	var rec Record
	var found bool
	err := pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) (err error) {
		rec, found, err = s.Get(r.Context(), tx, d.Name, r.PathValue("uuid"), nil, s.gsAccess(r, who))
		return err
	})
	if err != nil {
		return err
	}
	v, has := rec.Data[field]
	if !found || rec.Cancelled || !has {
		return gsError(w, http.StatusNotFound, "no record found")
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"value": v})
	return nil
}

// PersonalDataUsage is one read of a person's data, as GovStack shows it.
type PersonalDataUsage struct {
	ID                    string    `json:"id"`
	ReaderID              string    `json:"readerId"`
	ReaderInstitutionID   string    `json:"readerInstitutionId,omitempty"`
	ReaderApplicationName string    `json:"readerApplicationName,omitempty"`
	SearchDateTime        time.Time `json:"searchDateTime"`
	Action                string    `json:"action"`
	Purpose               string    `json:"purpose"`
	Object                string    `json:"object"`
}

// gsPersonalDataUsage lists who read the person's data, from the audit
// trail: for an IIN, every read naming them; for another identifier, the
// reads of the records of databaseId whose ID it is.
func (s *Store) gsPersonalDataUsage(w http.ResponseWriter, r *http.Request) error {
	if _, ok := gsClient(r); !ok {
		return gsError(w, http.StatusBadRequest, "the Information-Mediator-Client header must be INSTANCE/CLASS/MEMBER/SUBSYSTEM")
	}
	q := r.URL.Query()
	user := firstNonEmpty(q.Get("userId"), q.Get("userID"))
	db := firstNonEmpty(q.Get("databaseId"), q.Get("DatabaseID"), q.Get("databaseID"))
	if !gsIDRE.MatchString(user) || strings.Trim(user, ".") == "" {
		return gsError(w, http.StatusBadRequest, "invalid userId")
	}
	if !gsIDRE.MatchString(db) || strings.Trim(db, ".") == "" {
		return gsError(w, http.StatusBadRequest, "invalid databaseId")
	}
	out := []PersonalDataUsage{}
	var events []audit.Event
	var ids []int64
	if keySubject(user) != "" {
		evs, err := audit.ForSubject(r.Context(), s.pool, user, 1000)
		if err != nil {
			return err
		}
		events = evs
	} else {
		// The records whose ID is the user's, in any registry with an ID
		// attribute; their reads are audited under "registry:<name>/<key>".
		rows, err := s.pool.Query(r.Context(), `
			SELECT a.id, a.at, a.actor, a.action, a.object, a.purpose FROM audit_event a
			JOIN registry_record_version v ON a.object LIKE 'registry:' || v.registry || '/' || v.key || '%'
			WHERE v.data->>'ID' = $1 AND v.version = 1 AND a.action LIKE 'registry.%'
			ORDER BY a.id DESC LIMIT 1000`, user)
		if err != nil {
			return err
		}
		for rows.Next() {
			var e audit.Event
			var id int64
			if err := rows.Scan(&id, &e.At, &e.Actor, &e.Action, &e.Object, &e.Purpose); err != nil {
				return err
			}
			events, ids = append(events, e), append(ids, id)
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for i, e := range events {
		u := PersonalDataUsage{ID: strconv.Itoa(i + 1), ReaderID: e.Actor, SearchDateTime: e.At.UTC(), Action: e.Action, Purpose: e.Purpose, Object: e.Object}
		if i < len(ids) {
			u.ID = strconv.FormatInt(ids[i], 10)
		}
		if sys, ok := strings.CutPrefix(e.Actor, "system:"); ok {
			parts := strings.Split(sys, "/")
			if len(parts) == 4 {
				u.ReaderInstitutionID, u.ReaderApplicationName = parts[2], parts[3]
			}
		}
		out = append(out, u)
	}
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
