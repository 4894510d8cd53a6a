package consent

import (
	"context"
	"crypto/rand"
	"crypto/sha1" // GovStack's Revision.serializedHash is SHA-1 by specification
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/web"
)

// The GovStack Consent building block API (consent-openapi.yaml) on the same
// ledger, under /gs/consent/. Policies and data agreements are
// configuration: anyone reads them, a system or an officer writes them (a
// data agreement's consents go to whoever created it). Individuals map a
// GovStack id to an IIN. A consent record is a consent of this ledger: a
// citizen creating one for themselves opts in at once (signed, with a
// receipt); a system creating one for an individual makes a pending
// request, and the person approves by the code sent by SMS
// (POST /api/v1/consents/{id}/approve); optIn false withdraws (revokes).

// gsID is what ids of policies, data agreements and individuals may be.
var gsID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// GovStackRoutes mounts the GovStack Consent API under /gs/consent/.
func (l *Ledger) GovStackRoutes(s *web.Server) {
	const p = "/gs/consent"
	s.HandleFunc("POST "+p+"/config/policy/", l.gsPolicyCreate)
	s.HandleFunc("GET "+p+"/config/policy/{id}/", l.gsPolicyRead)
	s.HandleFunc("PUT "+p+"/config/policy/{id}/", l.gsPolicyUpdate)
	s.HandleFunc("DELETE "+p+"/config/policy/{id}/", l.gsPolicyDelete)
	s.HandleFunc("GET "+p+"/config/policy/{id}/revisions/", l.gsPolicyRevisions)
	s.HandleFunc("GET "+p+"/config/policies/", l.gsPolicyList)
	s.HandleFunc("GET "+p+"/service/policy/{id}/", l.gsPolicyRead)

	s.HandleFunc("POST "+p+"/config/data-agreement/", l.gsAgreementCreate)
	s.HandleFunc("GET "+p+"/config/data-agreement/{id}/", l.gsAgreementRead)
	s.HandleFunc("PUT "+p+"/config/data-agreement/{id}/", l.gsAgreementUpdate)
	s.HandleFunc("DELETE "+p+"/config/data-agreement/{id}/", l.gsAgreementDelete)
	s.HandleFunc("GET "+p+"/config/data-agreements/", l.gsAgreementList)
	s.HandleFunc("GET "+p+"/service/data-agreement/{id}/", l.gsAgreementRead)
	s.HandleFunc("GET "+p+"/service/verification/data-agreements/", l.gsAgreementList)
	s.HandleFunc("GET "+p+"/audit/data-agreements/", l.gsAgreementList)
	s.HandleFunc("GET "+p+"/audit/data-agreement/{id}/", l.gsAgreementRead)

	for _, base := range []string{p + "/config", p + "/service"} {
		s.HandleFunc("POST "+base+"/individual/", l.gsIndividualCreate)
		s.HandleFunc("GET "+base+"/individual/{id}/", l.gsIndividualRead)
		s.HandleFunc("GET "+base+"/individuals/", l.gsIndividualList)
	}

	s.HandleFunc("POST "+p+"/service/individual/record/data-agreement/{id}/", l.gsRecordCreate)
	s.HandleFunc("GET "+p+"/service/individual/record/data-agreement/{id}/", l.gsRecordForAgreement)
	s.HandleFunc("GET "+p+"/service/individual/record/consent-record/", l.gsRecordList)
	s.HandleFunc("PUT "+p+"/service/individual/record/consent-record/{id}/", l.gsRecordUpdate)
	s.HandleFunc("GET "+p+"/service/verification/consent-records/", l.gsRecordList)
	s.HandleFunc("GET "+p+"/service/verification/consent-record/{id}/", l.gsRecordRead)
	s.HandleFunc("GET "+p+"/audit/consent-records/", l.gsRecordList)
	s.HandleFunc("GET "+p+"/audit/consent-record/{id}/", l.gsRecordRead)
}

func gsError(w http.ResponseWriter, status int, detail string) error {
	web.WriteJSON(w, status, map[string]string{"detail": detail})
	return nil
}

// gsFail answers an error as GovStack clients expect: JSON with a detail
// (and our code).
func gsFail(w http.ResponseWriter, err error) error {
	var e *apierr.Error
	if errors.As(err, &e) && e.Code != apierr.Internal {
		status := e.Status()
		if status == http.StatusUnprocessableEntity {
			status = http.StatusBadRequest // "bad input parameter"
		}
		web.WriteJSON(w, status, map[string]any{"detail": string(e.Code), "code": e.Code, "fields": e.Fields})
		return nil
	}
	return err
}

// errGSGone is a write that found nothing to change.
var errGSGone = errors.New("no such object")

// gsChange runs a write and its audit event in one transaction: a change is
// never made without its trace, and a failed trace undoes the change.
// write returns errGSGone when there was nothing to change.
func (l *Ledger) gsChange(ctx context.Context, e audit.Event, write func(tx pgx.Tx) error) error {
	return pg.InTx(ctx, l.pool, func(tx pgx.Tx) error {
		if err := write(tx); err != nil {
			return err
		}
		e.At = l.clock.Now()
		return audit.Record(ctx, tx, e)
	})
}

// gsGone turns "no rows changed" into errGSGone.
func gsGone(tag pgconn.CommandTag, err error) error {
	if err == nil && tag.RowsAffected() == 0 {
		return errGSGone
	}
	return err
}

func gsPathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !gsID.MatchString(id) {
		gsError(w, http.StatusBadRequest, "bad input parameter: id")
		return "", false
	}
	return id, true
}

// gsWriter is who may configure: a system or an officer; it is also the
// requester of the agreement's consents.
func gsWriter(w http.ResponseWriter, r *http.Request) (identity.Principal, string, bool) {
	p, ok := identity.FromContext(r.Context())
	if !ok {
		gsError(w, http.StatusUnauthorized, "a bearer token is required")
		return p, "", false
	}
	req, ok := Requester(p)
	if !ok {
		gsError(w, http.StatusForbidden, "only an organisation's system or an agency configures consent")
		return p, "", false
	}
	return p, req, true
}

func newGSID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Revision is GovStack's revision of any object.
type Revision struct {
	ID                     string `json:"id"`
	SchemaName             string `json:"schemaName"`
	ObjectID               string `json:"objectId"`
	SignedWithoutObjectID  bool   `json:"signedWithoutObjectId"`
	SerializedSnapshot     string `json:"serializedSnapshot"`
	SerializedHash         string `json:"serializedHash"`
	Timestamp              string `json:"timestamp"`
	AuthorizedByIndividual any    `json:"authorizedByIndividual,omitempty"`
	AuthorizedByOther      string `json:"authorizedByOther,omitempty"`
	PredecessorHash        string `json:"predecessorHash,omitempty"`
}

func revisionOf(schema, objectID string, n int, at time.Time, snapshot []byte, by, predecessor string) Revision {
	snap, _ := json.Marshal(map[string]any{"objectData": json.RawMessage(snapshot), "schemaName": schema, "objectId": objectID,
		"signedWithoutObjectId": false, "timestamp": at.UTC().Format(time.RFC3339Nano), "authorizedByOther": by})
	sum := sha1.Sum(snap)
	return Revision{ID: fmt.Sprintf("%s-%d", objectID, n), SchemaName: schema, ObjectID: objectID, SerializedSnapshot: string(snap),
		SerializedHash: hex.EncodeToString(sum[:]), Timestamp: at.UTC().Format(time.RFC3339Nano), AuthorizedByOther: by,
		PredecessorHash: predecessor}
}

// ---- policies

func (l *Ledger) gsPolicyCreate(w http.ResponseWriter, r *http.Request) error {
	p, _, ok := gsWriter(w, r)
	if !ok {
		return nil
	}
	var req struct {
		Policy map[string]any `json:"policy"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || req.Policy == nil {
		return gsError(w, http.StatusBadRequest, "bad input parameter: policy")
	}
	id, _ := req.Policy["id"].(string)
	if id == "" {
		id = newGSID()
	} else if !gsID.MatchString(id) {
		return gsError(w, http.StatusBadRequest, "bad input parameter: policy.id")
	}
	for _, f := range []string{"name", "version", "url"} {
		if s, _ := req.Policy[f].(string); s == "" {
			return gsError(w, http.StatusBadRequest, "bad input parameter: policy."+f)
		}
	}
	req.Policy["id"] = id
	body, _ := json.Marshal(req.Policy)
	now := l.clock.Now()
	err := l.gsChange(r.Context(), audit.Event{Actor: p.Actor(), Action: "consent.policy.created", Object: "policy:" + id, Purpose: "configuration"}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(r.Context(), `INSERT INTO consent_policy (id, revision, body, created_at) VALUES ($1, 1, $2, $3) ON CONFLICT DO NOTHING`, id, body, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return apierr.New(apierr.ConsentState)
		}
		_, err = tx.Exec(r.Context(), `INSERT INTO consent_policy_revision (policy_id, revision, at, body) VALUES ($1, 1, $2, $3)`, id, now, body)
		return err
	})
	if err != nil {
		return gsFail(w, err)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"policy": json.RawMessage(body), "revision": revisionOf("policy", id, 1, now, body, p.Actor(), "")})
	return nil
}

func (l *Ledger) policyRevisions(ctx context.Context, id string) ([]Revision, error) {
	rows, err := l.pool.Query(ctx, `SELECT revision, at, body FROM consent_policy_revision WHERE policy_id = $1 ORDER BY revision`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Revision
	prev := ""
	for rows.Next() {
		var n int
		var at time.Time
		var body []byte
		if err := rows.Scan(&n, &at, &body); err != nil {
			return nil, err
		}
		rev := revisionOf("policy", id, n, at, body, "", prev)
		prev = rev.SerializedHash
		out = append(out, rev)
	}
	return out, rows.Err()
}

func (l *Ledger) gsPolicyRead(w http.ResponseWriter, r *http.Request) error {
	id, ok := gsPathID(w, r)
	if !ok {
		return nil
	}
	var body []byte
	err := l.pool.QueryRow(r.Context(), `SELECT body FROM consent_policy WHERE id = $1 AND deleted_at IS NULL`, id).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return gsError(w, http.StatusNotFound, "no such policy")
	}
	if err != nil {
		return err
	}
	revs, err := l.policyRevisions(r.Context(), id)
	if err != nil {
		return err
	}
	out := map[string]any{"policy": json.RawMessage(body)}
	if len(revs) > 0 {
		out["revision"] = revs[len(revs)-1]
	}
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (l *Ledger) gsPolicyUpdate(w http.ResponseWriter, r *http.Request) error {
	id, ok := gsPathID(w, r)
	if !ok {
		return nil
	}
	p, _, ok := gsWriter(w, r)
	if !ok {
		return nil
	}
	var req struct {
		Policy map[string]any `json:"policy"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || req.Policy == nil {
		return gsError(w, http.StatusBadRequest, "bad input parameter: policy")
	}
	req.Policy["id"] = id
	body, _ := json.Marshal(req.Policy)
	now := l.clock.Now()
	var n int
	err := l.gsChange(r.Context(), audit.Event{Actor: p.Actor(), Action: "consent.policy.updated", Object: "policy:" + id, Purpose: "configuration"}, func(tx pgx.Tx) error {
		err := tx.QueryRow(r.Context(), `UPDATE consent_policy SET revision = revision + 1, body = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING revision`, id, body).Scan(&n)
		if errors.Is(err, pgx.ErrNoRows) {
			return apierr.New(apierr.RouteNotFound)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(r.Context(), `INSERT INTO consent_policy_revision (policy_id, revision, at, body) VALUES ($1, $2, $3, $4)`, id, n, now, body)
		return err
	})
	if err != nil {
		return gsFail(w, err)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"policy": json.RawMessage(body), "revision": revisionOf("policy", id, n, now, body, p.Actor(), "")})
	return nil
}

func (l *Ledger) gsPolicyDelete(w http.ResponseWriter, r *http.Request) error {
	id, ok := gsPathID(w, r)
	if !ok {
		return nil
	}
	p, _, ok := gsWriter(w, r)
	if !ok {
		return nil
	}
	err := l.gsChange(r.Context(), audit.Event{Actor: p.Actor(), Action: "consent.policy.deleted", Object: "policy:" + id, Purpose: "configuration"}, func(tx pgx.Tx) error {
		return gsGone(tx.Exec(r.Context(), `UPDATE consent_policy SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL`, id, l.clock.Now()))
	})
	if errors.Is(err, errGSGone) {
		return gsError(w, http.StatusNotFound, "no such policy")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (l *Ledger) gsPolicyRevisions(w http.ResponseWriter, r *http.Request) error {
	id, ok := gsPathID(w, r)
	if !ok {
		return nil
	}
	revs, err := l.policyRevisions(r.Context(), id)
	if err != nil {
		return err
	}
	if len(revs) == 0 {
		return gsError(w, http.StatusNotFound, "no such policy")
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"revisions": revs})
	return nil
}

func (l *Ledger) gsPolicyList(w http.ResponseWriter, r *http.Request) error {
	return l.gsListBodies(w, r, `SELECT body FROM consent_policy WHERE deleted_at IS NULL ORDER BY created_at, id`, "policies")
}

func (l *Ledger) gsListBodies(w http.ResponseWriter, r *http.Request, q, key string, args ...any) error {
	rows, err := l.pool.Query(r.Context(), q, args...)
	if err != nil {
		return err
	}
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[json.RawMessage])
	if err != nil {
		return err
	}
	if bodies == nil {
		bodies = []json.RawMessage{}
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{key: bodies})
	return nil
}

// ---- data agreements

// agreementInput is a GovStack data agreement with the data items its
// consents cover, as dataAttributes (GovStack's DataAgreementAttribute,
// name = the item).
type agreementInput struct {
	DataAgreement map[string]any `json:"dataAgreement"`
}

func (l *Ledger) agreementFields(ctx context.Context, in map[string]any) (purpose string, items []string, err error) {
	purpose, _ = in["purpose"].(string)
	if strings.TrimSpace(purpose) == "" || len(purpose) > maxPurpose {
		return "", nil, apierr.New(apierr.Validation, apierr.FieldError{Path: "/dataAgreement/purpose", Code: apierr.FieldRequired})
	}
	for _, f := range []string{"version", "lawfulBasis", "dpia"} {
		if s, _ := in[f].(string); s == "" {
			return "", nil, apierr.New(apierr.Validation, apierr.FieldError{Path: "/dataAgreement/" + f, Code: apierr.FieldRequired})
		}
	}
	attrs, _ := in["dataAttributes"].([]any)
	for i, a := range attrs {
		m, _ := a.(map[string]any)
		name, _ := m["name"].(string)
		path := fmt.Sprintf("/dataAgreement/dataAttributes/%d/name", i)
		if !WellFormedItem(name) {
			return "", nil, apierr.New(apierr.Validation, apierr.FieldError{Path: path, Code: apierr.FieldFormat})
		}
		if l.items != nil {
			ok, err := l.items.KnownItem(ctx, name)
			if err != nil {
				return "", nil, err
			}
			if !ok {
				return "", nil, apierr.New(apierr.Validation, apierr.FieldError{Path: path, Code: apierr.FieldConsentItemUnknown})
			}
		}
		items = append(items, name)
	}
	if len(items) == 0 {
		return "", nil, apierr.New(apierr.Validation, apierr.FieldError{Path: "/dataAgreement/dataAttributes", Code: apierr.FieldRequired})
	}
	return strings.TrimSpace(purpose), items, nil
}

func (l *Ledger) gsAgreementCreate(w http.ResponseWriter, r *http.Request) error {
	p, requester, ok := gsWriter(w, r)
	if !ok {
		return nil
	}
	var req agreementInput
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || req.DataAgreement == nil {
		return gsError(w, http.StatusBadRequest, "bad input parameter: dataAgreement")
	}
	id, _ := req.DataAgreement["id"].(string)
	if id == "" {
		id = newGSID()
	} else if !gsID.MatchString(id) {
		return gsError(w, http.StatusBadRequest, "bad input parameter: dataAgreement.id")
	}
	purpose, items, err := l.agreementFields(r.Context(), req.DataAgreement)
	if err != nil {
		return gsFail(w, err)
	}
	req.DataAgreement["id"] = id
	if _, ok := req.DataAgreement["active"]; !ok {
		req.DataAgreement["active"] = true
	}
	body, _ := json.Marshal(req.DataAgreement)
	now := l.clock.Now()
	err = l.gsChange(r.Context(), audit.Event{Actor: p.Actor(), Action: "consent.agreement.created", Object: "data_agreement:" + id, Purpose: purpose}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(r.Context(), `INSERT INTO consent_data_agreement (id, revision, requester, purpose, items, body, created_at)
			VALUES ($1, 1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, id, requester, purpose, items, body, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return apierr.New(apierr.ConsentState)
		}
		return nil
	})
	if err != nil {
		return gsFail(w, err)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"dataAgreement": json.RawMessage(body), "revision": revisionOf("DataAgreement", id, 1, now, body, p.Actor(), "")})
	return nil
}

type agreement struct {
	id, requester, purpose string
	items                  []string
	body                   json.RawMessage
	revision               int
	createdAt              time.Time
}

func (l *Ledger) agreement(ctx context.Context, id string) (agreement, error) {
	a := agreement{id: id}
	err := l.pool.QueryRow(ctx, `SELECT requester, purpose, items, body, revision, created_at FROM consent_data_agreement
		WHERE id = $1 AND deleted_at IS NULL`, id).Scan(&a.requester, &a.purpose, &a.items, &a.body, &a.revision, &a.createdAt)
	return a, err
}

func (l *Ledger) gsAgreementRead(w http.ResponseWriter, r *http.Request) error {
	id, ok := gsPathID(w, r)
	if !ok {
		return nil
	}
	a, err := l.agreement(r.Context(), id)
	if errors.Is(err, pgx.ErrNoRows) {
		return gsError(w, http.StatusNotFound, "no such data agreement")
	}
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"dataAgreement": a.body,
		"revision": revisionOf("DataAgreement", id, a.revision, a.createdAt, a.body, "", "")})
	return nil
}

func (l *Ledger) gsAgreementUpdate(w http.ResponseWriter, r *http.Request) error {
	id, ok := gsPathID(w, r)
	if !ok {
		return nil
	}
	p, requester, ok := gsWriter(w, r)
	if !ok {
		return nil
	}
	var req agreementInput
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil || req.DataAgreement == nil {
		return gsError(w, http.StatusBadRequest, "bad input parameter: dataAgreement")
	}
	purpose, items, err := l.agreementFields(r.Context(), req.DataAgreement)
	if err != nil {
		return gsFail(w, err)
	}
	req.DataAgreement["id"] = id
	body, _ := json.Marshal(req.DataAgreement)
	var n int
	err = l.gsChange(r.Context(), audit.Event{Actor: p.Actor(), Action: "consent.agreement.updated", Object: "data_agreement:" + id, Purpose: purpose}, func(tx pgx.Tx) error {
		// Consents already given keep the purpose and items they were given for.
		err := tx.QueryRow(r.Context(), `UPDATE consent_data_agreement SET revision = revision + 1, purpose = $3, items = $4, body = $5
			WHERE id = $1 AND requester = $2 AND deleted_at IS NULL RETURNING revision`, id, requester, purpose, items, body).Scan(&n)
		if errors.Is(err, pgx.ErrNoRows) {
			return errGSGone
		}
		return err
	})
	if errors.Is(err, errGSGone) {
		return gsError(w, http.StatusNotFound, "no such data agreement of yours")
	}
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"dataAgreement": json.RawMessage(body), "revision": revisionOf("DataAgreement", id, n, l.clock.Now(), body, p.Actor(), "")})
	return nil
}

func (l *Ledger) gsAgreementDelete(w http.ResponseWriter, r *http.Request) error {
	id, ok := gsPathID(w, r)
	if !ok {
		return nil
	}
	p, requester, ok := gsWriter(w, r)
	if !ok {
		return nil
	}
	err := l.gsChange(r.Context(), audit.Event{Actor: p.Actor(), Action: "consent.agreement.deleted", Object: "data_agreement:" + id, Purpose: "configuration"}, func(tx pgx.Tx) error {
		return gsGone(tx.Exec(r.Context(), `UPDATE consent_data_agreement SET deleted_at = $3 WHERE id = $1 AND requester = $2 AND deleted_at IS NULL`,
			id, requester, l.clock.Now()))
	})
	if errors.Is(err, errGSGone) {
		return gsError(w, http.StatusNotFound, "no such data agreement of yours")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (l *Ledger) gsAgreementList(w http.ResponseWriter, r *http.Request) error {
	return l.gsListBodies(w, r, `SELECT body FROM consent_data_agreement WHERE deleted_at IS NULL ORDER BY created_at, id`, "dataAgreements")
}

// ---- individuals

// individualView is GovStack's Individual; externalId is the IIN, shown
// only to whoever may see it (the person, systems and officers).
type individualView struct {
	ID                 string `json:"id"`
	ExternalID         string `json:"externalId,omitempty"`
	ExternalIDType     string `json:"externalIdType,omitempty"`
	IdentityProviderID string `json:"identityProviderId,omitempty"`
}

// gsCaller is any signed-in principal.
func gsCaller(w http.ResponseWriter, r *http.Request) (identity.Principal, bool) {
	p, ok := identity.FromContext(r.Context())
	if !ok {
		gsError(w, http.StatusUnauthorized, "a bearer token is required")
	}
	return p, ok
}

func (l *Ledger) gsIndividualCreate(w http.ResponseWriter, r *http.Request) error {
	p, ok := gsCaller(w, r)
	if !ok {
		return nil
	}
	var req struct {
		Individual individualView `json:"individual"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		return gsError(w, http.StatusBadRequest, "bad input parameter: individual")
	}
	in := req.Individual
	if in.ExternalIDType != "" && in.ExternalIDType != "iin" {
		return gsError(w, http.StatusBadRequest, "bad input parameter: externalIdType must be iin")
	}
	if _, err := iin.Parse(in.ExternalID); err != nil {
		return gsFail(w, apierr.New(apierr.Validation, iinFieldError("/individual/externalId", err)))
	}
	if p.Kind == identity.Citizen && !p.IsCitizen(in.ExternalID) {
		return gsError(w, http.StatusForbidden, "a citizen registers only themselves")
	}
	in.ExternalIDType = "iin"
	in.ID = newGSID()
	body, _ := json.Marshal(in)
	now := l.clock.Now()
	err := pg.InTx(r.Context(), l.pool, func(tx pgx.Tx) error {
		// One individual per person: a second create returns the first.
		err := tx.QueryRow(r.Context(), `INSERT INTO consent_individual (id, subject_iin, body, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (subject_iin) DO UPDATE SET subject_iin = EXCLUDED.subject_iin RETURNING id, body`, in.ID, in.ExternalID, body, now).Scan(&in.ID, &body)
		if err != nil {
			return err
		}
		return audit.Record(r.Context(), tx, audit.Event{At: now, Actor: p.Actor(), Action: "consent.individual.registered", SubjectIIN: in.ExternalID,
			Object: "individual:" + in.ID, Purpose: "consent management", RequestID: web.RequestID(r.Context())})
	})
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"individual": json.RawMessage(body)})
	return nil
}

// individual returns the IIN of an individual the caller may act for.
func (l *Ledger) individual(ctx context.Context, p identity.Principal, id string) (string, json.RawMessage, error) {
	var subject string
	var body json.RawMessage
	err := l.pool.QueryRow(ctx, `SELECT subject_iin, body FROM consent_individual WHERE id = $1`, id).Scan(&subject, &body)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && p.Kind == identity.Citizen && !p.IsCitizen(subject)) {
		return "", nil, apierr.New(apierr.RouteNotFound)
	}
	return subject, body, err
}

func (l *Ledger) gsIndividualRead(w http.ResponseWriter, r *http.Request) error {
	id, ok := gsPathID(w, r)
	if !ok {
		return nil
	}
	p, ok := gsCaller(w, r)
	if !ok {
		return nil
	}
	subject, body, err := l.individual(r.Context(), p, id)
	if err == nil && !p.IsCitizen(subject) && !l.asked(r.Context(), p, subject) {
		err = apierr.New(apierr.RouteNotFound)
	}
	if err != nil {
		if e := new(apierr.Error); errors.As(err, &e) {
			return gsError(w, http.StatusNotFound, "no such individual")
		}
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"individual": body})
	return nil
}

func (l *Ledger) gsIndividualList(w http.ResponseWriter, r *http.Request) error {
	p, ok := gsCaller(w, r)
	if !ok {
		return nil
	}
	if p.Kind == identity.Citizen {
		return l.gsListBodies(w, r, `SELECT body FROM consent_individual WHERE subject_iin = $1`, "individuals", p.Subject)
	}
	req, ok := Requester(p)
	if !ok {
		return gsError(w, http.StatusForbidden, "not a requester")
	}
	// A requester sees the individuals it has asked for consent.
	return l.gsListBodies(w, r, `SELECT body FROM consent_individual i WHERE EXISTS (SELECT 1 FROM consent c
		WHERE c.subject_iin = i.subject_iin AND c.requester = $1) ORDER BY created_at, id LIMIT 1000`, "individuals", req)
}

// asked reports whether p is a requester that has asked subject for
// consent: who else may look an individual up.
func (l *Ledger) asked(ctx context.Context, p identity.Principal, subject string) bool {
	req, ok := Requester(p)
	if !ok {
		return false
	}
	var found bool
	err := l.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM consent WHERE subject_iin = $1 AND requester = $2)`, subject, req).Scan(&found)
	return err == nil && found
}

// ---- consent records

// ConsentRecord is GovStack's view of a consent.
type ConsentRecord struct {
	ID                        string           `json:"id"`
	DataAgreement             string           `json:"dataAgreement"`
	DataAgreementRevisionHash string           `json:"dataAgreementRevisionHash"`
	Individual                string           `json:"individual,omitempty"`
	OptIn                     bool             `json:"optIn"`
	State                     string           `json:"state"` // unsigned or signed
	Status                    Status           `json:"status"`
	ValidUntil                time.Time        `json:"validUntil"`
	Signature                 *RecordSignature `json:"signature,omitempty"`
}

// RecordSignature carries the ledger's receipt as the record's signature.
type RecordSignature struct {
	Payload   string `json:"payload"`
	Signature string `json:"signature"`
	Algorithm string `json:"signatureMethod"`
	KeyID     string `json:"verificationMethod"`
	Timestamp string `json:"timestamp"`
}

func (l *Ledger) recordOf(ctx context.Context, c Consent) (ConsentRecord, []Revision, error) {
	rec := ConsentRecord{ID: c.ID.String(), DataAgreement: c.DataAgreementID, OptIn: c.Status == Granted,
		State: "unsigned", Status: c.Status, ValidUntil: c.ValidUntil}
	if a, err := l.agreement(ctx, c.DataAgreementID); err == nil {
		rec.DataAgreementRevisionHash = revisionOf("DataAgreement", a.id, a.revision, a.createdAt, a.body, "", "").SerializedHash
	}
	_ = l.pool.QueryRow(ctx, `SELECT id FROM consent_individual WHERE subject_iin = $1`, c.SubjectIIN).Scan(&rec.Individual)
	rs, err := l.Receipts(ctx, c)
	if err != nil {
		return rec, nil, err
	}
	for _, r := range rs {
		if r.Kind == "granted" {
			parts := strings.SplitN(r.JWS, ".", 3)
			rec.State = "signed"
			rec.Signature = &RecordSignature{Payload: parts[0] + "." + parts[1], Signature: parts[2], Algorithm: "EdDSA",
				KeyID: r.KeyID, Timestamp: r.IssuedAt.UTC().Format(time.RFC3339)}
		}
	}
	rows, err := l.pool.Query(ctx, `SELECT revision, at, actor, snapshot FROM consent_revision WHERE consent_id = $1 ORDER BY revision`, c.ID)
	if err != nil {
		return rec, nil, err
	}
	defer rows.Close()
	var revs []Revision
	prev := ""
	for rows.Next() {
		var n int
		var at time.Time
		var actor string
		var snap []byte
		if err := rows.Scan(&n, &at, &actor, &snap); err != nil {
			return rec, nil, err
		}
		rev := revisionOf("ConsentRecord", rec.ID, n, at, snap, actor, prev)
		prev = rev.SerializedHash
		revs = append(revs, rev)
	}
	return rec, revs, rows.Err()
}

func (l *Ledger) gsRecordCreate(w http.ResponseWriter, r *http.Request) error {
	id, ok := gsPathID(w, r)
	if !ok {
		return nil
	}
	p, ok := gsCaller(w, r)
	if !ok {
		return nil
	}
	indID := r.URL.Query().Get("individualId")
	if !gsID.MatchString(indID) {
		return gsError(w, http.StatusBadRequest, "bad input parameter: individualId")
	}
	a, err := l.agreement(r.Context(), id)
	if errors.Is(err, pgx.ErrNoRows) {
		return gsError(w, http.StatusNotFound, "no such data agreement")
	}
	if err != nil {
		return err
	}
	subject, _, err := l.individual(r.Context(), p, indID)
	if err != nil {
		if e := new(apierr.Error); errors.As(err, &e) {
			return gsError(w, http.StatusNotFound, "no such individual")
		}
		return err
	}
	// The agreement's requester asks; the person opts in now when it is
	// they who call, else by the code sent to them.
	if req, ok := Requester(p); ok && req != a.requester {
		return gsError(w, http.StatusForbidden, "only the data agreement's owner requests consent to it")
	}
	c, err := l.Ask(r.Context(), Request{SubjectIIN: subject, Items: a.items, Purpose: a.purpose, DataAgreementID: a.id,
		ValidUntil: l.clock.Now().AddDate(1, 0, 0)}, a.requester, p.Actor(), web.RequestID(r.Context()))
	if err != nil {
		return gsFail(w, err)
	}
	if p.IsCitizen(subject) {
		c, err = l.change(r.Context(), c.ID, func(tx pgx.Tx, c *Consent, now time.Time) (bool, error) {
			return false, l.grant(r.Context(), tx, c, p.Actor(), "govstack", now, web.RequestID(r.Context()))
		})
		if err != nil {
			return gsFail(w, err)
		}
	}
	rec, revs, err := l.recordOf(r.Context(), c)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"consentRecord": rec, "revision": revs[len(revs)-1]})
	return nil
}

// recordsOf lists the consents the caller may see: a citizen's own, a
// requester's; of one agreement, one individual, when given.
func (l *Ledger) recordsOf(ctx context.Context, p identity.Principal, agreementID, individualID string) ([]Consent, error) {
	subject := ""
	if individualID != "" {
		s, _, err := l.individual(ctx, p, individualID)
		if err != nil {
			return nil, err
		}
		subject = s
	}
	var who, whoCol string
	if p.Kind == identity.Citizen {
		who, whoCol = p.Subject, "subject_iin"
	} else {
		r, ok := Requester(p)
		if !ok {
			return nil, apierr.New(apierr.Forbidden)
		}
		who, whoCol = r, "requester"
	}
	rows, err := l.pool.Query(ctx, `SELECT `+consentCols+` FROM consent WHERE `+whoCol+` = $1 AND data_agreement_id IS NOT NULL
		AND ($2 = '' OR data_agreement_id = $2) AND ($3 = '' OR subject_iin = $3) ORDER BY requested_at DESC LIMIT 1000`, who, agreementID, subject)
	if err != nil {
		return nil, err
	}
	now := l.clock.Now()
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Consent, error) { return scanConsent(row, now) })
}

func (l *Ledger) gsRecords(w http.ResponseWriter, r *http.Request, agreementID string, single bool) error {
	p, ok := gsCaller(w, r)
	if !ok {
		return nil
	}
	ind := r.URL.Query().Get("individualId")
	if ind != "" && !gsID.MatchString(ind) {
		return gsError(w, http.StatusBadRequest, "bad input parameter: individualId")
	}
	cs, err := l.recordsOf(r.Context(), p, agreementID, ind)
	if err != nil {
		if e := new(apierr.Error); errors.As(err, &e) && e.Code == apierr.RouteNotFound {
			return gsError(w, http.StatusNotFound, "no such individual")
		}
		return gsFail(w, err)
	}
	out := []ConsentRecord{}
	for _, c := range cs {
		rec, _, err := l.recordOf(r.Context(), c)
		if err != nil {
			return err
		}
		out = append(out, rec)
	}
	if single {
		// The current record for an agreement (and individual).
		if len(out) == 0 {
			return gsError(w, http.StatusNotFound, "no consent record")
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"consentRecord": out[0]})
		return nil
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"consentRecords": out})
	return nil
}

func (l *Ledger) gsRecordForAgreement(w http.ResponseWriter, r *http.Request) error {
	id, ok := gsPathID(w, r)
	if !ok {
		return nil
	}
	return l.gsRecords(w, r, id, true)
}

func (l *Ledger) gsRecordList(w http.ResponseWriter, r *http.Request) error {
	return l.gsRecords(w, r, "", false)
}

func (l *Ledger) gsRecordRead(w http.ResponseWriter, r *http.Request) error {
	p, ok := gsCaller(w, r)
	if !ok {
		return nil
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return gsError(w, http.StatusBadRequest, "bad input parameter: consentRecordId")
	}
	c, err := l.Get(r.Context(), id, p)
	if err != nil {
		return gsError(w, http.StatusNotFound, "no such consent record")
	}
	rec, revs, err := l.recordOf(r.Context(), c)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"consentRecord": rec, "revisions": revs})
	return nil
}

// gsRecordUpdate changes optIn: false withdraws (revokes a granted consent,
// refuses a pending one); true by the person grants a pending one.
func (l *Ledger) gsRecordUpdate(w http.ResponseWriter, r *http.Request) error {
	p, ok := gsCaller(w, r)
	if !ok {
		return nil
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return gsError(w, http.StatusBadRequest, "bad input parameter: consentRecordId")
	}
	var req struct {
		ConsentRecord struct {
			OptIn *bool `json:"optIn"`
		} `json:"consentRecord"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil || req.ConsentRecord.OptIn == nil {
		return gsError(w, http.StatusBadRequest, "bad input parameter: consentRecord.optIn")
	}
	c, err := l.Get(r.Context(), id, p)
	if err != nil {
		return gsError(w, http.StatusNotFound, "no such consent record")
	}
	rid := web.RequestID(r.Context())
	switch {
	case *req.ConsentRecord.OptIn && c.Status == Pending:
		c, err = l.Approve(r.Context(), id, "", p, rid) // a requester needs the code: refused here
	case !*req.ConsentRecord.OptIn && c.Status == Pending:
		c, err = l.Refuse(r.Context(), id, p, rid)
	case !*req.ConsentRecord.OptIn:
		c, err = l.Revoke(r.Context(), id, p, "", rid)
	case c.Status != Granted:
		err = apierr.New(apierr.ConsentState)
	}
	if err != nil {
		return gsFail(w, err)
	}
	rec, revs, err := l.recordOf(r.Context(), c)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"consentRecord": rec, "revision": revs[len(revs)-1]})
	return nil
}
