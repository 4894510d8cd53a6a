package consent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pg"
)

// Need is one intended use of a person's data.
type Need struct {
	Subject string // the person's IIN
	// Requester is who wants the data, as consents name it: "system:<id>",
	// "agency:<id>" (see [Requester]) or "exchange:<X-Road client id>" for
	// a call through the exchange (matched with a consent's
	// exchange_client).
	Requester string
	Items     []string // "registry.attribute" or "service:<service id>"
	Purpose   string   // must equal the consent's purpose (spaces trimmed)
	At        time.Time
	// ConsentID, when the caller presents one (the exchange's
	// Ortaq-Consent header), is the only consent considered.
	ConsentID uuid.UUID
	// Actor is who asks now, for the audit trail ("system:process",
	// "exchange:KZ/COM/..."); empty means Requester.
	Actor string
	// Channel says where the data go out: "registry", "exchange",
	// "process"; Object what for ("application:<id>"). Both for the trail.
	Channel, Object string
	RequestID       string
	// Unrecorded asks for the answer only: neither the use nor a refusal
	// is recorded. An exchange gateway asks so when its replica is not
	// current, and reports the call's outcome later (access reports).
	Unrecorded bool
}

// Basis is what allowed a use: the consent.
type Basis struct {
	ConsentID  uuid.UUID `json:"consent_id"`
	ValidUntil time.Time `json:"valid_until"`
}

// Denial is an attempt that had no basis, as the data-protection officer's
// alert (outbox topic consent.denied) carries it.
type Denial struct {
	SubjectIIN string    `json:"subject_iin"`
	Requester  string    `json:"requester"`
	Actor      string    `json:"actor"`
	Items      []string  `json:"items"`
	Purpose    string    `json:"purpose"`
	ConsentID  string    `json:"consent_id,omitempty"`
	Code       string    `json:"code"`
	Channel    string    `json:"channel,omitempty"`
	At         time.Time `json:"at"`
	RequestID  string    `json:"request_id,omitempty"`
}

// Check finds a granted, unexpired, unrevoked consent of n.Subject to
// n.Requester covering every item of n.Items for n.Purpose at n.At (zero:
// now). Found, it records consent.used in tx (the caller's transaction, so
// the use and the read commit together) and returns the basis. Not found,
// it returns an *apierr.Error — consent.missing, consent.expired or
// consent.revoked (naming the uncovered items as /items/<i>, or /purpose)
// — and records the attempt in its own transaction (audit consent.denied
// and the outbox alert consent.denied), which the caller's rollback
// cannot undo.
//
// tx may be nil: then the use is recorded in a transaction of its own.
func (l *Ledger) Check(ctx context.Context, tx pgx.Tx, n Need) (Basis, error) {
	if n.At.IsZero() {
		n.At = l.clock.Now()
	}
	n.Purpose = strings.TrimSpace(n.Purpose)
	if n.Actor == "" {
		n.Actor = n.Requester
	}
	if _, err := iin.Parse(n.Subject); err != nil || n.Requester == "" || len(n.Items) == 0 || n.Purpose == "" {
		// A malformed question is the caller's bug, not an attempt.
		return Basis{}, fmt.Errorf("consent check: subject, requester, items and purpose are required")
	}
	if c, ok := l.grants.find(n, l.clock.Now()); ok {
		if n.Unrecorded {
			return Basis{ConsentID: c.ID, ValidUntil: c.ValidUntil}, nil
		}
		return Basis{ConsentID: c.ID, ValidUntil: c.ValidUntil}, l.used(ctx, tx, n, c)
	}
	q := `SELECT ` + consentCols + ` FROM consent WHERE subject_iin = $1 AND (requester = $2 OR exchange_client = $3)`
	args := []any{n.Subject, n.Requester, strings.TrimPrefix(n.Requester, "exchange:")}
	if n.ConsentID != uuid.Nil {
		q += ` AND id = $4`
		args = append(args, n.ConsentID)
	}
	var db interface {
		Query(context.Context, string, ...any) (pgx.Rows, error)
	} = l.pool
	if tx != nil {
		db = tx
	}
	rows, err := db.Query(ctx, q+` ORDER BY requested_at DESC, decided_at DESC NULLS LAST LIMIT 100`, args...)
	if err != nil {
		return Basis{}, fmt.Errorf("consent check: %w", err)
	}
	cands, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Consent, error) { return scanConsent(row, n.At) })
	if err != nil {
		return Basis{}, fmt.Errorf("consent check: %w", err)
	}
	if n.ConsentID == uuid.Nil {
		l.grants.put(n, cands, l.clock.Now())
	}
	code, fields, consentID := apierr.ConsentMissing, []apierr.FieldError(nil), ""
	best := 0 // how close the best refusal came: 1 covers, 2 covers and was revoked/expired
	for _, c := range cands {
		missing := uncovered(c, n)
		if len(missing) > 0 || c.Purpose != n.Purpose {
			if best == 0 && len(missing) < len(n.Items) && fields == nil {
				fields = missing
				if len(missing) == 0 {
					fields = []apierr.FieldError{{Path: "/purpose", Code: apierr.FieldConsentPurpose}}
				}
				consentID = c.ID.String()
			}
			continue
		}
		switch c.Status {
		case Granted:
			b := Basis{ConsentID: c.ID, ValidUntil: c.ValidUntil}
			if n.Unrecorded {
				return b, nil
			}
			return b, l.used(ctx, tx, n, c)
		case Revoked: // the newest covering consent says why
			if best < 2 {
				code, best, fields, consentID = apierr.ConsentRevoked, 2, nil, c.ID.String()
			}
		case Expired:
			if best < 2 {
				code, best, fields, consentID = apierr.ConsentExpired, 2, nil, c.ID.String()
			}
		default: // pending or refused: as good as none
			if best < 1 {
				best, fields, consentID = 1, nil, c.ID.String()
			}
		}
	}
	if fields == nil && best == 0 && n.ConsentID == uuid.Nil {
		for i := range n.Items {
			fields = append(fields, apierr.FieldError{Path: fmt.Sprintf("/items/%d", i), Code: apierr.FieldConsentNotCovered})
		}
	}
	if n.ConsentID != uuid.Nil {
		consentID = n.ConsentID.String()
	}
	if n.Unrecorded {
		return Basis{}, apierr.New(code, fields...)
	}
	if err := l.deny(ctx, n, string(code), consentID); err != nil {
		return Basis{}, err
	}
	return Basis{}, apierr.New(code, fields...)
}

// uncovered names the items of n the consent does not cover.
func uncovered(c Consent, n Need) []apierr.FieldError {
	var out []apierr.FieldError
	for i, it := range n.Items {
		if !slices.Contains(c.Items, it) {
			out = append(out, apierr.FieldError{Path: fmt.Sprintf("/items/%d", i), Code: apierr.FieldConsentNotCovered})
		}
	}
	return out
}

// used records an allowed use in tx (or its own transaction).
func (l *Ledger) used(ctx context.Context, tx pgx.Tx, n Need, c Consent) error {
	rec := func(tx pgx.Tx) error { return recordUse(ctx, tx, l.clock.Now(), n, c.ID.String()) }
	if tx != nil {
		return rec(tx)
	}
	return pg.InTx(ctx, l.pool, rec)
}

// usageObject is the audit object of a check: "consent:<id>
// items:<a>,<b> via:<channel> for:<object>" (parts present when known);
// [ParseObject] reads it back.
func usageObject(consentID string, n Need) string {
	var b strings.Builder
	if consentID != "" {
		b.WriteString("consent:" + consentID + " ")
	}
	b.WriteString("items:" + strings.Join(n.Items, ","))
	if n.Channel != "" {
		b.WriteString(" via:" + n.Channel)
	}
	if n.Object != "" {
		b.WriteString(" for:" + strings.ReplaceAll(n.Object, " ", "_"))
	}
	return b.String()
}

// recordUse writes the audit event consent.used of an allowed use.
func recordUse(ctx context.Context, tx pgx.Tx, at time.Time, n Need, consentID string) error {
	return audit.Record(ctx, tx, audit.Event{At: at, Actor: n.Actor, Action: "consent.used", SubjectIIN: n.Subject,
		Object: usageObject(consentID, n), Purpose: n.Purpose, RequestID: n.RequestID})
}

// recordDenial writes a refused attempt in tx: the audit event
// consent.denied and the data-protection officer's alert (outbox topic
// consent.denied).
func recordDenial(ctx context.Context, tx pgx.Tx, at time.Time, n Need, code, consentID string) error {
	d := Denial{SubjectIIN: n.Subject, Requester: n.Requester, Actor: n.Actor, Items: n.Items, Purpose: n.Purpose,
		ConsentID: consentID, Code: code, Channel: n.Channel, At: at, RequestID: n.RequestID}
	if err := audit.Record(ctx, tx, audit.Event{At: at, Actor: n.Actor, Action: "consent.denied", SubjectIIN: n.Subject,
		Object: "denied:" + code + " " + usageObject(consentID, n), Purpose: n.Purpose, RequestID: n.RequestID}); err != nil {
		return err
	}
	return outbox.Emit(ctx, tx, at, "consent.denied", n.Subject, d)
}

// deny records a refused attempt in its own transaction.
func (l *Ledger) deny(ctx context.Context, n Need, code, consentID string) error {
	now := l.clock.Now()
	err := pg.InTx(context.WithoutCancel(ctx), l.pool, func(tx pgx.Tx) error {
		return recordDenial(ctx, tx, now, n, code, consentID)
	})
	if err != nil {
		return fmt.Errorf("record denied access: %w", err)
	}
	l.log.Warn("personal data access denied", "code", code, "requester", n.Requester, "channel", n.Channel, "request_id", n.RequestID)
	return nil
}

// Usage is an audit object of the consent ledger read back.
type Usage struct {
	ConsentID string   // the consent used or named
	Items     []string // the items asked for
	Channel   string
	Denied    string // the refusal code; "" for an allowed use
}

// ParseObject reads an audit object written by the ledger (consent.used,
// consent.denied, consent.granted...); ok is false for others.
func ParseObject(object string) (u Usage, ok bool) {
	if rest, found := strings.CutPrefix(object, "denied:"); found {
		u.Denied, object, _ = strings.Cut(rest, " ")
		ok = true
	}
	for f := range strings.FieldsSeq(object) {
		k, v, _ := strings.Cut(f, ":")
		switch k {
		case "consent":
			u.ConsentID, ok = v, true
		case "items":
			if v != "" {
				u.Items = strings.Split(v, ",")
			}
			ok = true
		case "via":
			u.Channel = v
		}
	}
	return u, ok
}

// CacheTTL bounds how long a node keeps using a consent revoked on another
// node: granted consents are kept in memory that long after they were
// read (the node that revokes forgets them at once). Refusals are never
// cached: a new grant counts at the next check.
const CacheTTL = time.Second

// cacheMax bounds the cache; past it, it starts afresh.
const cacheMax = 100_000

// grantCache keeps the granted consents of (subject, requester) pairs.
type grantCache struct {
	mu sync.Mutex
	m  map[string]cachedGrants
}

type cachedGrants struct {
	at     time.Time
	grants []Consent
}

func cacheKey(subject, requester string) string { return subject + "\x00" + requester }

// find returns a cached granted consent covering n at n.At.
func (g *grantCache) find(n Need, now time.Time) (Consent, bool) {
	g.mu.Lock()
	e, ok := g.m[cacheKey(n.Subject, n.Requester)]
	g.mu.Unlock()
	if !ok || now.Sub(e.at) >= CacheTTL || now.Before(e.at) {
		return Consent{}, false
	}
	for _, c := range e.grants {
		if (n.ConsentID == uuid.Nil || c.ID == n.ConsentID) && c.Purpose == n.Purpose &&
			n.At.Before(c.ValidUntil) && len(uncovered(c, n)) == 0 {
			return c, true
		}
	}
	return Consent{}, false
}

// put remembers the granted ones of what a check read.
func (g *grantCache) put(n Need, cands []Consent, now time.Time) {
	var grants []Consent
	for _, c := range cands {
		if c.Status == Granted {
			grants = append(grants, c)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil || len(g.m) >= cacheMax {
		g.m = map[string]cachedGrants{}
	}
	g.m[cacheKey(n.Subject, n.Requester)] = cachedGrants{at: now, grants: grants}
}

// forget drops everything cached about subject (after a revocation).
func (g *grantCache) forget(subject string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k := range g.m {
		if strings.HasPrefix(k, subject+"\x00") {
			delete(g.m, k)
		}
	}
}
