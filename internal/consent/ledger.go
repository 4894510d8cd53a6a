package consent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the consent capability's part of the database.
func Schema() pg.Schema { return pg.NewSchema("consent", migrations) }

// Limits of requests and codes.
const (
	CodeTTL     = 5 * time.Minute          // a one-time code's life
	MaxAttempts = 5                        // wrong codes before a code is spent
	MaxCodes    = 3                        // codes one request may send
	RequestTTL  = 24 * time.Hour           // a pending request lapses after
	MaxPeriod   = 3 * 365 * 24 * time.Hour // the longest consent
	maxItems    = 50
	maxPurpose  = 500
)

// Status is where a consent stands. Expired is derived: a granted consent
// past its date, or a pending request past its own.
type Status string

// The statuses of a consent.
const (
	Pending Status = "pending"
	Granted Status = "granted"
	Refused Status = "refused"
	Revoked Status = "revoked"
	Expired Status = "expired"
)

// Consent is one consent, as its subject and its requester see it.
type Consent struct {
	ID               uuid.UUID  `json:"id"`
	SubjectIIN       string     `json:"subject_iin"`
	Requester        string     `json:"requester"`
	RequesterName    string     `json:"requester_name,omitempty"`
	ExchangeClient   string     `json:"exchange_client,omitempty"`
	Items            []string   `json:"items"`
	Purpose          string     `json:"purpose"`
	DataAgreementID  string     `json:"data_agreement_id,omitempty"`
	Status           Status     `json:"status"`
	RequestedAt      time.Time  `json:"requested_at"`
	RequestExpiresAt time.Time  `json:"request_expires_at"`
	ValidUntil       time.Time  `json:"valid_until"`
	DecidedAt        *time.Time `json:"decided_at,omitempty"`
	Channel          string     `json:"channel,omitempty"`
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
	Revision         int        `json:"revision"`
}

// ItemCatalogue says which data items exist; the composition root fills it
// from the registries' definitions and the exchange's services.
type ItemCatalogue interface {
	KnownItem(ctx context.Context, item string) (bool, error)
}

// Ledger keeps consents and answers checks.
type Ledger struct {
	pool   *pgxpool.Pool
	clock  clock.Clock
	items  ItemCatalogue
	log    *slog.Logger
	keys   keyring
	grants grantCache
	feed   feedHub
}

// New returns the ledger on pool. items may be nil: then every well-formed
// item is accepted (tests).
func New(pool *pgxpool.Pool, clk clock.Clock, items ItemCatalogue, log *slog.Logger) *Ledger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ledger{pool: pool, clock: clk, items: items, log: log}
}

// Pool is the ledger's database (tests and the command line).
func (l *Ledger) Pool() *pgxpool.Pool { return l.pool }

// Requester names who may use a consent asked by p: "system:<client id>"
// for an organisation's system, "agency:<id>" for an officer (the consent
// is the agency's, not the officer's). Citizens ask for no one's data.
func Requester(p identity.Principal) (string, bool) {
	switch p.Kind {
	case identity.System:
		return "system:" + p.Subject, true
	case identity.Officer:
		if p.Agency != "" {
			return "agency:" + p.Agency, true
		}
	}
	return "", false
}

// Request is what a requester asks for.
type Request struct {
	SubjectIIN string    `json:"subject_iin"`
	Items      []string  `json:"items"`
	Purpose    string    `json:"purpose"`
	ValidUntil time.Time `json:"valid_until"`
	// ExchangeClient is the requester's X-Road client
	// (INSTANCE/CLASS/MEMBER/SUBSYSTEM) for calls through the exchange.
	ExchangeClient string `json:"exchange_client,omitempty"`
	RequesterName  string `json:"requester_name,omitempty"`
	// DataAgreementID ties a consent to a GovStack data agreement.
	DataAgreementID string `json:"-"`
}

var (
	registryItem = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$`)
	serviceItem  = regexp.MustCompile(`^service:[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){4}$`)
	clientID     = regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){3}$`)
)

// WellFormedItem reports whether item is "registry.attribute" or
// "service:INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE".
func WellFormedItem(item string) bool {
	return registryItem.MatchString(item) || serviceItem.MatchString(item)
}

func iinFieldError(path string, err error) apierr.FieldError {
	var e *iin.Error
	if errors.As(err, &e) {
		switch c := apierr.Code(e.Code); c {
		case apierr.FieldIINEmpty, apierr.FieldIINLength, apierr.FieldIINDigits, apierr.FieldIINChecksum:
			return apierr.FieldError{Path: path, Code: c}
		}
	}
	return apierr.FieldError{Path: path, Code: apierr.FieldFormat}
}

func (l *Ledger) validate(ctx context.Context, r *Request, now time.Time) ([]apierr.FieldError, error) {
	var fields []apierr.FieldError
	if _, err := iin.Parse(r.SubjectIIN); err != nil {
		fields = append(fields, iinFieldError("/subject_iin", err))
	}
	switch {
	case len(r.Items) == 0:
		fields = append(fields, apierr.FieldError{Path: "/items", Code: apierr.FieldRequired})
	case len(r.Items) > maxItems:
		fields = append(fields, apierr.FieldError{Path: "/items", Code: apierr.FieldOutOfRange})
	}
	seen := map[string]bool{}
	for i, it := range r.Items {
		path := fmt.Sprintf("/items/%d", i)
		switch {
		case !WellFormedItem(it):
			fields = append(fields, apierr.FieldError{Path: path, Code: apierr.FieldFormat})
		case seen[it]:
			fields = append(fields, apierr.FieldError{Path: path, Code: apierr.FieldDuplicate})
		case l.items != nil:
			ok, err := l.items.KnownItem(ctx, it)
			if err != nil {
				return nil, err
			}
			if !ok {
				fields = append(fields, apierr.FieldError{Path: path, Code: apierr.FieldConsentItemUnknown})
			}
		}
		seen[it] = true
	}
	r.Purpose = strings.TrimSpace(r.Purpose)
	switch {
	case r.Purpose == "":
		fields = append(fields, apierr.FieldError{Path: "/purpose", Code: apierr.FieldRequired})
	case len(r.Purpose) > maxPurpose:
		fields = append(fields, apierr.FieldError{Path: "/purpose", Code: apierr.FieldTooLong})
	}
	switch {
	case r.ValidUntil.IsZero():
		fields = append(fields, apierr.FieldError{Path: "/valid_until", Code: apierr.FieldRequired})
	case !r.ValidUntil.After(now.Add(time.Minute)) || r.ValidUntil.After(now.Add(MaxPeriod)):
		fields = append(fields, apierr.FieldError{Path: "/valid_until", Code: apierr.FieldOutOfRange})
	}
	if r.ExchangeClient != "" && !clientID.MatchString(r.ExchangeClient) {
		fields = append(fields, apierr.FieldError{Path: "/exchange_client", Code: apierr.FieldFormat})
	}
	if len(r.RequesterName) > 200 {
		fields = append(fields, apierr.FieldError{Path: "/requester_name", Code: apierr.FieldTooLong})
	}
	return fields, nil
}

// newCode draws a six-digit code from crypto/rand.
func newCode() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", binary.BigEndian.Uint64(b[:])%1_000_000), nil
}

// codeHash binds a code to its consent, so one hash says nothing of another
// consent's code.
func codeHash(id uuid.UUID, code string) []byte {
	h := sha256.New()
	h.Write(id[:])
	h.Write([]byte(code))
	return h.Sum(nil)
}

// Ask records a pending request by requester (see [Requester]) and sends
// the person a one-time code by SMS (through notify's outbox event). The
// code is never returned: the person tells it to the requester, or approves
// signed in.
func (l *Ledger) Ask(ctx context.Context, req Request, requester, actor, requestID string) (Consent, error) {
	now := l.clock.Now().Truncate(time.Microsecond)
	fields, err := l.validate(ctx, &req, now)
	if err != nil {
		return Consent{}, err
	}
	if len(fields) > 0 {
		return Consent{}, apierr.New(apierr.Validation, fields...)
	}
	id, err := uuid.NewRandom() // unguessable: the id is presented on every use
	if err != nil {
		return Consent{}, err
	}
	c := Consent{ID: id, SubjectIIN: req.SubjectIIN, Requester: requester, RequesterName: req.RequesterName,
		ExchangeClient: req.ExchangeClient, Items: req.Items, Purpose: req.Purpose, DataAgreementID: req.DataAgreementID,
		Status: Pending, RequestedAt: now, RequestExpiresAt: now.Add(RequestTTL), ValidUntil: req.ValidUntil.UTC(), Revision: 1}
	err = pg.InTx(ctx, l.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO consent (id, subject_iin, requester, requester_name, exchange_client, items, purpose,
			data_agreement_id, status, requested_by, requested_at, request_expires_at, valid_until)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11, $12)`,
			c.ID, c.SubjectIIN, c.Requester, c.RequesterName, nullable(c.ExchangeClient), c.Items, c.Purpose,
			nullable(c.DataAgreementID), actor, c.RequestedAt, c.RequestExpiresAt, c.ValidUntil)
		if err != nil {
			return fmt.Errorf("insert consent: %w", err)
		}
		if err := l.revise(ctx, tx, c, actor, now); err != nil {
			return err
		}
		if err := l.sendCode(ctx, tx, &c, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{At: now, Actor: actor, Action: "consent.requested", SubjectIIN: c.SubjectIIN,
			Object: "consent:" + c.ID.String() + " items:" + strings.Join(c.Items, ","), Purpose: c.Purpose, RequestID: requestID})
	})
	if err != nil {
		return Consent{}, err
	}
	l.feed.wake()
	return c, nil
}

// sendCode sets a fresh code on the pending consent c and queues the SMS.
func (l *Ledger) sendCode(ctx context.Context, tx pgx.Tx, c *Consent, now time.Time) error {
	code, err := newCode()
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE consent SET code_hash = $2, code_expires_at = $3, code_attempts = 0,
		codes_sent = codes_sent + 1 WHERE id = $1`, c.ID, codeHash(c.ID, code), now.Add(CodeTTL)); err != nil {
		return fmt.Errorf("store code: %w", err)
	}
	who := c.RequesterName
	if who == "" {
		who = c.Requester
	}
	// notify turns this into an SMS (and an in-app message) to the person.
	return outbox.Emit(ctx, tx, now, "notify.message.requested", c.ID.String(), map[string]any{
		"to_iin":   c.SubjectIIN,
		"template": "consent.code",
		"message":  i18n.Catalogue("consent.code.sms", code, who, c.Purpose, int(CodeTTL/time.Minute)),
	})
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// revise appends the consent's current state to its history.
func (l *Ledger) revise(ctx context.Context, tx pgx.Tx, c Consent, actor string, at time.Time) error {
	snap, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO consent_revision (consent_id, revision, at, status, actor, snapshot)
		VALUES ($1, $2, $3, $4, $5, $6)`, c.ID, c.Revision, at, string(c.Status), actor, snap)
	if err != nil {
		return fmt.Errorf("record consent revision: %w", err)
	}
	return nil
}

const consentCols = `id, subject_iin, requester, requester_name, coalesce(exchange_client, ''), items, purpose,
	coalesce(data_agreement_id, ''), status, requested_at, request_expires_at, valid_until, decided_at,
	coalesce(channel, ''), revoked_at, revision`

func scanConsent(row pgx.Row, now time.Time) (Consent, error) {
	var c Consent
	var status string
	err := row.Scan(&c.ID, &c.SubjectIIN, &c.Requester, &c.RequesterName, &c.ExchangeClient, &c.Items, &c.Purpose,
		&c.DataAgreementID, &status, &c.RequestedAt, &c.RequestExpiresAt, &c.ValidUntil, &c.DecidedAt,
		&c.Channel, &c.RevokedAt, &c.Revision)
	c.Status = Status(status)
	c.Status = c.effective(now)
	return c, err
}

// effective is the status at now: granted and pending ones expire.
func (c Consent) effective(now time.Time) Status {
	switch {
	case c.Status == Granted && !now.Before(c.ValidUntil):
		return Expired
	case c.Status == Pending && !now.Before(c.RequestExpiresAt):
		return Expired
	}
	return c.Status
}

// ErrNotFound is consent.not_found: no such consent, or not the caller's.
var ErrNotFound = apierr.New(apierr.ConsentNotFound)

// visible reports whether p is the consent's subject or its requester.
func visible(c Consent, p identity.Principal) bool {
	if p.IsCitizen(c.SubjectIIN) {
		return true
	}
	r, ok := Requester(p)
	return ok && r == c.Requester
}

// Get returns a consent its subject or requester may see.
func (l *Ledger) Get(ctx context.Context, id uuid.UUID, by identity.Principal) (Consent, error) {
	c, err := scanConsent(l.pool.QueryRow(ctx, `SELECT `+consentCols+` FROM consent WHERE id = $1`, id), l.clock.Now())
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !visible(c, by)) {
		return Consent{}, ErrNotFound
	}
	return c, err
}

// List returns the consents of a citizen, or those a requester asked for,
// newest first; subject narrows a requester's list to one person.
func (l *Ledger) List(ctx context.Context, by identity.Principal, subject string, limit int) ([]Consent, error) {
	var rows pgx.Rows
	var err error
	if by.Kind == identity.Citizen {
		rows, err = l.pool.Query(ctx, `SELECT `+consentCols+` FROM consent WHERE subject_iin = $1
			ORDER BY requested_at DESC, id LIMIT $2`, by.Subject, limit)
	} else {
		r, ok := Requester(by)
		if !ok {
			return nil, apierr.New(apierr.Forbidden)
		}
		rows, err = l.pool.Query(ctx, `SELECT `+consentCols+` FROM consent WHERE requester = $1 AND ($2 = '' OR subject_iin = $2)
			ORDER BY requested_at DESC, id LIMIT $3`, r, subject, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("list consents: %w", err)
	}
	now := l.clock.Now()
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Consent, error) { return scanConsent(row, now) })
}

// ListAll returns consents for operators (the command line), newest
// first, optionally of one subject.
func (l *Ledger) ListAll(ctx context.Context, subject string, limit int) ([]Consent, error) {
	rows, err := l.pool.Query(ctx, `SELECT `+consentCols+` FROM consent WHERE ($1 = '' OR subject_iin = $1)
		ORDER BY requested_at DESC, id LIMIT $2`, subject, limit)
	if err != nil {
		return nil, fmt.Errorf("list consents: %w", err)
	}
	now := l.clock.Now()
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Consent, error) { return scanConsent(row, now) })
}

// change runs fn on the locked consent in a transaction. fn may return a
// refusal (*apierr.Error) together with commit=true to keep what it wrote
// (a counted wrong code) and still refuse.
func (l *Ledger) change(ctx context.Context, id uuid.UUID, fn func(tx pgx.Tx, c *Consent, now time.Time) (commit bool, err error)) (Consent, error) {
	var c Consent
	var refusal error
	err := pg.InTx(ctx, l.pool, func(tx pgx.Tx) error {
		now := l.clock.Now().Truncate(time.Microsecond)
		var err error
		c, err = scanConsent(tx.QueryRow(ctx, `SELECT `+consentCols+` FROM consent WHERE id = $1 FOR UPDATE`, id), now)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		commit, err := fn(tx, &c, now)
		if err != nil && commit {
			refusal = err
			return nil
		}
		return err
	})
	if err != nil {
		return Consent{}, err
	}
	l.feed.wake()
	if refusal != nil {
		return Consent{}, refusal
	}
	return c, nil
}

// Approve grants a pending consent: by the requester with the code the
// person received, or by the person signed in (code ignored).
func (l *Ledger) Approve(ctx context.Context, id uuid.UUID, code string, by identity.Principal, requestID string) (Consent, error) {
	return l.approve(ctx, id, code, by, requestID, false)
}

// ApproveByCode grants a pending consent when its subject, signed in,
// types the code the request sent them by SMS (the portal's "approve by
// code"): the code proves the phone is at hand, as with KDP. A wrong code
// counts an attempt as it does for the requester; anyone but the subject
// gets ErrNotFound.
func (l *Ledger) ApproveByCode(ctx context.Context, id uuid.UUID, code string, by identity.Principal, requestID string) (Consent, error) {
	return l.approve(ctx, id, code, by, requestID, true)
}

func (l *Ledger) approve(ctx context.Context, id uuid.UUID, code string, by identity.Principal, requestID string, subjectByCode bool) (Consent, error) {
	return l.change(ctx, id, func(tx pgx.Tx, c *Consent, now time.Time) (bool, error) {
		if !visible(*c, by) || (subjectByCode && !by.IsCitizen(c.SubjectIIN)) {
			return false, ErrNotFound
		}
		if c.Status == Expired {
			return false, apierr.New(apierr.ConsentExpired)
		}
		if c.Status != Pending {
			return false, apierr.New(apierr.ConsentState)
		}
		channel := "citizen"
		if subjectByCode || !by.IsCitizen(c.SubjectIIN) {
			channel = "code"
			if refusal, commit, err := l.checkCode(ctx, tx, c.ID, code, now); refusal != nil || err != nil {
				if err != nil {
					return false, err
				}
				return commit, refusal
			}
		}
		return false, l.grant(ctx, tx, c, by.Actor(), channel, now, requestID)
	})
}

// checkCode compares code with the stored hash. A wrong code counts an
// attempt (commit true); the fifth spends the code.
func (l *Ledger) checkCode(ctx context.Context, tx pgx.Tx, id uuid.UUID, code string, now time.Time) (refusal error, commit bool, err error) {
	var hash []byte
	var expires *time.Time
	var attempts int
	if err := tx.QueryRow(ctx, `SELECT code_hash, code_expires_at, code_attempts FROM consent WHERE id = $1`, id).
		Scan(&hash, &expires, &attempts); err != nil {
		return nil, false, fmt.Errorf("read code: %w", err)
	}
	if strings.TrimSpace(code) == "" {
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/code", Code: apierr.FieldRequired}), false, nil
	}
	if hash == nil || attempts >= MaxAttempts {
		return apierr.New(apierr.ConsentCodeSpent, apierr.FieldError{Path: "/code", Code: apierr.FieldConsentCodeSpent}), false, nil
	}
	if expires == nil || !now.Before(*expires) {
		return apierr.New(apierr.ConsentCodeExpired, apierr.FieldError{Path: "/code", Code: apierr.FieldConsentCodeExpired}), false, nil
	}
	if subtle.ConstantTimeCompare(hash, codeHash(id, strings.TrimSpace(code))) != 1 {
		if _, err := tx.Exec(ctx, `UPDATE consent SET code_attempts = code_attempts + 1,
			code_hash = CASE WHEN code_attempts + 1 >= $2 THEN NULL ELSE code_hash END WHERE id = $1`, id, MaxAttempts); err != nil {
			return nil, false, fmt.Errorf("count attempt: %w", err)
		}
		return apierr.New(apierr.ConsentCodeInvalid, apierr.FieldError{Path: "/code", Code: apierr.FieldConsentCodeInvalid}), true, nil
	}
	return nil, false, nil
}

// grant makes c granted, with its receipt, event and audit entry.
func (l *Ledger) grant(ctx context.Context, tx pgx.Tx, c *Consent, actor, channel string, now time.Time, requestID string) error {
	c.Status, c.DecidedAt, c.Channel, c.Revision = Granted, &now, channel, c.Revision+1
	if _, err := tx.Exec(ctx, `UPDATE consent SET status = 'granted', decided_at = $2, decided_by = $3, channel = $4,
		code_hash = NULL, revision = $5 WHERE id = $1`, c.ID, now, actor, channel, c.Revision); err != nil {
		return fmt.Errorf("grant consent: %w", err)
	}
	return l.settled(ctx, tx, c, actor, "granted", now, requestID)
}

// settled records a grant or a revocation: revision, receipt, outbox event,
// audit event.
func (l *Ledger) settled(ctx context.Context, tx pgx.Tx, c *Consent, actor, kind string, now time.Time, requestID string) error {
	if err := l.revise(ctx, tx, *c, actor, now); err != nil {
		return err
	}
	if _, err := l.issueReceipt(ctx, tx, *c, kind, now); err != nil {
		return err
	}
	if err := outbox.Emit(ctx, tx, now, "consent."+kind, c.ID.String(), map[string]any{
		"consent_id": c.ID, "subject_iin": c.SubjectIIN, "requester": c.Requester, "items": c.Items,
		"purpose": c.Purpose, "valid_until": c.ValidUntil,
	}); err != nil {
		return err
	}
	return audit.Record(ctx, tx, audit.Event{At: now, Actor: actor, Action: "consent." + kind, SubjectIIN: c.SubjectIIN,
		Object: "consent:" + c.ID.String() + " items:" + strings.Join(c.Items, ","), Purpose: c.Purpose, RequestID: requestID})
}

// Refuse declines a pending request: the subject only.
func (l *Ledger) Refuse(ctx context.Context, id uuid.UUID, by identity.Principal, requestID string) (Consent, error) {
	return l.change(ctx, id, func(tx pgx.Tx, c *Consent, now time.Time) (bool, error) {
		if !by.IsCitizen(c.SubjectIIN) {
			return false, ErrNotFound
		}
		if c.Status != Pending {
			return false, apierr.New(apierr.ConsentState)
		}
		c.Status, c.DecidedAt, c.Channel, c.Revision = Refused, &now, "citizen", c.Revision+1
		if _, err := tx.Exec(ctx, `UPDATE consent SET status = 'refused', decided_at = $2, decided_by = $3, channel = 'citizen',
			code_hash = NULL, revision = $4 WHERE id = $1`, c.ID, now, by.Actor(), c.Revision); err != nil {
			return false, fmt.Errorf("refuse consent: %w", err)
		}
		if err := l.revise(ctx, tx, *c, by.Actor(), now); err != nil {
			return false, err
		}
		return false, audit.Record(ctx, tx, audit.Event{At: now, Actor: by.Actor(), Action: "consent.refused", SubjectIIN: c.SubjectIIN,
			Object: "consent:" + c.ID.String(), Purpose: c.Purpose, RequestID: requestID})
	})
}

// Revoke ends a granted consent at once: by its subject, its requester, or
// an operator (actor given, by zero). Revoking a revoked consent is
// consent.state_conflict.
func (l *Ledger) Revoke(ctx context.Context, id uuid.UUID, by identity.Principal, actor, requestID string) (Consent, error) {
	c, err := l.change(ctx, id, func(tx pgx.Tx, c *Consent, now time.Time) (bool, error) {
		if by.Kind != "" {
			if !visible(*c, by) {
				return false, ErrNotFound
			}
			actor = by.Actor()
		}
		if c.Status != Granted {
			return false, apierr.New(apierr.ConsentState)
		}
		c.Status, c.RevokedAt, c.Revision = Revoked, &now, c.Revision+1
		if _, err := tx.Exec(ctx, `UPDATE consent SET status = 'revoked', revoked_at = $2, revoked_by = $3, revision = $4
			WHERE id = $1`, c.ID, now, actor, c.Revision); err != nil {
			return false, fmt.Errorf("revoke consent: %w", err)
		}
		// Forgotten before and after the commit: a check between the two
		// reads the row, locked, as it was.
		l.grants.forget(c.SubjectIIN)
		return false, l.settled(ctx, tx, c, actor, "revoked", now, requestID)
	})
	if err == nil {
		l.grants.forget(c.SubjectIIN)
	}
	return c, err
}

// Resend sends a new code for a pending request (the requester only), at
// most MaxCodes in all.
func (l *Ledger) Resend(ctx context.Context, id uuid.UUID, by identity.Principal, requestID string) (Consent, error) {
	return l.change(ctx, id, func(tx pgx.Tx, c *Consent, now time.Time) (bool, error) {
		if r, ok := Requester(by); !ok || r != c.Requester {
			return false, ErrNotFound
		}
		if c.Status != Pending {
			return false, apierr.New(apierr.ConsentState)
		}
		var sent int
		if err := tx.QueryRow(ctx, `SELECT codes_sent FROM consent WHERE id = $1`, c.ID).Scan(&sent); err != nil {
			return false, err
		}
		if sent >= MaxCodes {
			return false, apierr.New(apierr.ConsentCodeLimit)
		}
		if err := l.sendCode(ctx, tx, c, now); err != nil {
			return false, err
		}
		return false, audit.Record(ctx, tx, audit.Event{At: now, Actor: by.Actor(), Action: "consent.code_sent", SubjectIIN: c.SubjectIIN,
			Object: "consent:" + c.ID.String(), Purpose: c.Purpose, RequestID: requestID})
	})
}
