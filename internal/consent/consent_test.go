package consent_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/notify"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pgtest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, audit.Schema(), outbox.Schema(), notify.Schema(), consent.Schema())
}

var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// items is the test catalogue of data items.
type items map[string]bool

func (i items) KnownItem(_ context.Context, it string) (bool, error) { return i[it], nil }

var known = items{"population.last_name": true, "population.first_name": true, "addresses.kato": true,
	"service:KZ/GOV/200/registry/persons": true}

type fixture struct {
	pool   *pgxpool.Pool
	clock  *clock.Fake
	ledger *consent.Ledger
	notify *notify.Notifier
	// lastSMS is the dev outbox id of the newest SMS smsCode read.
	lastSMS int64
}

func setup(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{pool: pgtest.New(t).Pool, clock: clock.NewFake(start)}
	f.ledger = consent.New(f.pool, f.clock, known, nil)
	f.notify = notify.New(f.pool, f.clock, slog.New(slog.DiscardHandler), notify.NewDevSender(f.pool, f.clock, notify.SMS))
	return f
}

func person(t *testing.T, serial int) string {
	t.Helper()
	n, err := iin.New(time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC), iin.SexFemale, serial)
	if err != nil {
		t.Fatal(err)
	}
	return n.String()
}

var (
	bank    = identity.Principal{Kind: identity.System, Subject: "halyk-loans"}
	other   = identity.Principal{Kind: identity.System, Subject: "other-bank"}
	officer = identity.Principal{Kind: identity.Officer, Subject: "mlsp-1", Agency: "mlsp", Roles: []string{"benefits-officer"}}
)

func citizen(s string) identity.Principal {
	return identity.Principal{Kind: identity.Citizen, Subject: s}
}

func (f *fixture) ask(t *testing.T, who identity.Principal, subject string, its ...string) consent.Consent {
	t.Helper()
	req, _ := consent.Requester(who)
	c, err := f.ledger.Ask(context.Background(), consent.Request{SubjectIIN: subject, Items: its, Purpose: "loan application",
		ValidUntil: start.AddDate(0, 1, 0), RequesterName: "Bank"}, req, who.Actor(), "req-1")
	if err != nil {
		t.Fatalf("ask: %v", err)
	}
	return c
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

// smsCode delivers the queued messages through notify and reads the code
// from the newest SMS to phone.
func (f *fixture) smsCode(t *testing.T, phone string) string {
	t.Helper()
	ctx := context.Background()
	// The outbox hands out an event only once every older transaction in
	// the cluster has ended, and parallel tests keep some open: wait for an
	// SMS newer than the last one read.
	var sent []notify.Sent
	for deadline := time.Now().Add(20 * time.Second); len(sent) == 0 || sent[0].ID <= f.lastSMS; {
		if _, err := f.notify.Consume(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.notify.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
		var err error
		if sent, err = notify.DevOutbox(ctx, f.pool, notify.OutboxFilter{To: phone, Channel: notify.SMS, Limit: 1}); err != nil {
			t.Fatal(err)
		}
		if (len(sent) == 0 || sent[0].ID <= f.lastSMS) && time.Now().After(deadline) {
			t.Fatalf("no new SMS to %s within 20 s", phone)
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.lastSMS = sent[0].ID
	code := sixDigits.FindString(sent[0].Body)
	if code == "" {
		t.Fatalf("no code in %q", sent[0].Body)
	}
	return code
}

func codeOf(err error) apierr.Code {
	var e *apierr.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestApprovalByCodeSentBySMS(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	subject := person(t, 1)
	if _, err := f.notify.SetContact(ctx, subject, notify.Contact{Phone: "+77010000001", Language: "ru"}, "citizen:"+subject, ""); err != nil {
		t.Fatal(err)
	}
	c := f.ask(t, bank, subject, "population.last_name", "population.first_name")
	if c.Status != consent.Pending || c.Requester != "system:halyk-loans" {
		t.Fatalf("asked: %+v", c)
	}
	code := f.smsCode(t, "+77010000001")

	// The code is nowhere in the ledger's tables or the audit trail.
	var leaks int
	if err := f.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM consent WHERE row_to_json(consent)::text LIKE '%'||$1||'%')
		+ (SELECT count(*) FROM audit_event WHERE row_to_json(audit_event)::text LIKE '%'||$1||'%')`, code).Scan(&leaks); err != nil {
		t.Fatal(err)
	}
	if leaks != 0 {
		t.Errorf("the code is stored in the clear in %d rows", leaks)
	}

	// Another system cannot use the request; a wrong code counts.
	if _, err := f.ledger.Approve(ctx, c.ID, code, other, ""); codeOf(err) != apierr.ConsentNotFound {
		t.Errorf("another system approves: %v", err)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if _, err := f.ledger.Approve(ctx, c.ID, wrong, bank, ""); codeOf(err) != apierr.ConsentCodeInvalid {
		t.Errorf("wrong code: %v", err)
	}
	got, err := f.ledger.Approve(ctx, c.ID, code, bank, "req-2")
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	if got.Status != consent.Granted || got.Channel != "code" || got.Revision != 2 {
		t.Errorf("approved: %+v", got)
	}
	// Single use.
	if _, err := f.ledger.Approve(ctx, c.ID, code, bank, ""); codeOf(err) != apierr.ConsentState {
		t.Errorf("code used twice: %v", err)
	}

	// The grant has a receipt that verifies; a changed one does not.
	rs, err := f.ledger.Receipts(ctx, got)
	if err != nil || len(rs) != 1 || rs[0].Kind != "granted" {
		t.Fatalf("receipts: %+v %v", rs, err)
	}
	v, err := f.ledger.Verify(ctx, rs[0].JWS)
	if err != nil || !v.Valid || v.Receipt.ConsentID != c.ID.String() || v.Receipt.Subject != subject || v.Status != consent.Granted {
		t.Errorf("verify: %+v %v", v, err)
	}
	parts := strings.Split(rs[0].JWS, ".")
	forged := parts[0] + "." + strings.TrimSuffix(parts[1], parts[1][len(parts[1])-2:]) + "AA." + parts[2]
	if v, _ := f.ledger.Verify(ctx, forged); v.Valid || v.Code == "" {
		t.Errorf("forged receipt verifies: %+v", v)
	}
	if v, _ := f.ledger.Verify(ctx, "not.a.jws"); v.Valid || v.Code != "receipt.malformed" {
		t.Errorf("garbage: %+v", v)
	}

	// Events: the code went through notify; the grant is on the outbox.
	evs, err := outbox.After(ctx, f.pool, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, e := range evs {
		topics = append(topics, e.Topic)
	}
	if strings.Join(topics, ",") != "notify.message.requested,consent.granted" {
		t.Errorf("events: %v", topics)
	}
	// Audited: request and grant, with the subject.
	trail, err := audit.ForSubject(ctx, f.pool, subject, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range trail {
		actions = append(actions, e.Action)
	}
	if !strings.Contains(strings.Join(actions, ","), "consent.granted") || !strings.Contains(strings.Join(actions, ","), "consent.requested") {
		t.Errorf("audit: %v", actions)
	}
}

func TestCodeExpiresAndAttemptsAreLimited(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	subject := person(t, 2)
	c := f.ask(t, bank, subject, "population.last_name")
	for i := range consent.MaxAttempts {
		_, err := f.ledger.Approve(ctx, c.ID, "99999"+string(rune('0'+i)), bank, "")
		if codeOf(err) != apierr.ConsentCodeInvalid && codeOf(err) != apierr.ConsentCodeSpent {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if _, err := f.ledger.Approve(ctx, c.ID, "123456", bank, ""); codeOf(err) != apierr.ConsentCodeSpent {
		t.Errorf("after %d wrong codes: %v", consent.MaxAttempts, err)
	}
	if _, err := f.ledger.Approve(ctx, c.ID, "", bank, ""); codeOf(err) != apierr.Validation {
		t.Errorf("no code: %v", err)
	}
	// A new code may be sent, up to MaxCodes in all; it lives five minutes.
	if _, err := f.ledger.Resend(ctx, c.ID, bank, ""); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(consent.CodeTTL)
	if _, err := f.ledger.Approve(ctx, c.ID, "123456", bank, ""); codeOf(err) != apierr.ConsentCodeExpired {
		t.Errorf("expired code: %v", err)
	}
	if _, err := f.ledger.Resend(ctx, c.ID, bank, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.Resend(ctx, c.ID, bank, ""); codeOf(err) != apierr.ConsentCodeLimit {
		t.Errorf("fourth code: %v", err)
	}
	if _, err := f.ledger.Resend(ctx, c.ID, other, ""); codeOf(err) != apierr.ConsentNotFound {
		t.Errorf("another system resends: %v", err)
	}
	// The person approves signed in without a code; others see nothing.
	if _, err := f.ledger.Approve(ctx, c.ID, "", citizen(person(t, 3)), ""); codeOf(err) != apierr.ConsentNotFound {
		t.Errorf("another citizen approves: %v", err)
	}
	got, err := f.ledger.Approve(ctx, c.ID, "", citizen(subject), "")
	if err != nil || got.Status != consent.Granted || got.Channel != "citizen" {
		t.Fatalf("citizen approves: %+v %v", got, err)
	}
	// A pending request lapses after a day.
	c2 := f.ask(t, bank, subject, "population.first_name")
	f.clock.Advance(consent.RequestTTL)
	if _, err := f.ledger.Approve(ctx, c2.ID, "", citizen(subject), ""); codeOf(err) != apierr.ConsentExpired {
		t.Errorf("lapsed request: %v", err)
	}
}

func TestAskValidates(t *testing.T) {
	f := setup(t)
	req, _ := consent.Requester(bank)
	_, err := f.ledger.Ask(context.Background(), consent.Request{SubjectIIN: "123456789012",
		Items: []string{"population.last_name", "population.nope", "population.last_name", "x"}, Purpose: " ",
		ValidUntil: start.AddDate(5, 0, 0), ExchangeClient: "KZ/COM"}, req, bank.Actor(), "")
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != apierr.Validation {
		t.Fatalf("ask: %v", err)
	}
	got := map[string]apierr.Code{}
	for _, fe := range e.Fields {
		got[fe.Path] = fe.Code
	}
	want := map[string]apierr.Code{"/subject_iin": apierr.FieldIINChecksum, "/items/1": apierr.FieldConsentItemUnknown,
		"/items/2": apierr.FieldDuplicate, "/items/3": apierr.FieldFormat, "/purpose": apierr.FieldRequired,
		"/valid_until": apierr.FieldOutOfRange, "/exchange_client": apierr.FieldFormat}
	for p, c := range want {
		if got[p] != c {
			t.Errorf("%s: got %q, want %q (all: %v)", p, got[p], c, got)
		}
	}
	if _, ok := consent.Requester(citizen(person(t, 4))); ok {
		t.Error("a citizen can be a requester")
	}
}

// deniedCount counts recorded refusals of subject: audit events and
// alerts on the outbox.
func deniedCount(t *testing.T, pool *pgxpool.Pool, subject string) (auditN, alerts int) {
	t.Helper()
	ctx := context.Background()
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE action = 'consent.denied' AND subject_iin = $1`, subject).Scan(&auditN); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox_event WHERE topic = 'consent.denied' AND key = $1`, subject).Scan(&alerts); err != nil {
		t.Fatal(err)
	}
	return auditN, alerts
}

func TestCheck(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	subject := person(t, 5)
	need := consent.Need{Subject: subject, Requester: "system:halyk-loans", Items: []string{"population.last_name"},
		Purpose: "loan application", Channel: "registry", RequestID: "r-1"}

	// No consent: refused, and the attempt survives the caller's rollback.
	err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		_, err := f.ledger.Check(ctx, tx, need)
		return err
	})
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != apierr.ConsentMissing || len(e.Fields) != 1 || e.Fields[0].Path != "/items/0" {
		t.Fatalf("no consent: %v %+v", err, e)
	}
	if a, o := deniedCount(t, f.pool, subject); a != 1 || o != 1 {
		t.Errorf("refusal recorded %d times in the trail, %d alerts; want 1, 1", a, o)
	}

	c := f.ask(t, bank, subject, "population.last_name", "population.first_name")
	if _, err := f.ledger.Check(ctx, nil, need); codeOf(err) != apierr.ConsentMissing {
		t.Errorf("pending consent: %v", err)
	}
	if _, err := f.ledger.Approve(ctx, c.ID, "", citizen(subject), ""); err != nil {
		t.Fatal(err)
	}
	var b consent.Basis
	err = pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		b, err = f.ledger.Check(ctx, tx, need)
		return err
	})
	if err != nil || b.ConsentID != c.ID {
		t.Fatalf("granted: %+v %v", b, err)
	}
	// Through the exchange, the consent's exchange client is the requester.
	if _, err := f.ledger.Check(ctx, nil, consent.Need{Subject: subject, Requester: "exchange:KZ/COM/123/loans",
		Items: need.Items, Purpose: need.Purpose}); codeOf(err) != apierr.ConsentMissing {
		t.Errorf("unknown exchange client: %v", err)
	}

	// Another item, another purpose, another requester: refused.
	for name, n := range map[string]consent.Need{
		"item":      {Subject: subject, Requester: need.Requester, Items: []string{"population.last_name", "addresses.kato"}, Purpose: need.Purpose},
		"purpose":   {Subject: subject, Requester: need.Requester, Items: need.Items, Purpose: "marketing"},
		"requester": {Subject: subject, Requester: "system:other-bank", Items: need.Items, Purpose: need.Purpose},
		"subject":   {Subject: person(t, 6), Requester: need.Requester, Items: need.Items, Purpose: need.Purpose},
		"id":        {Subject: subject, Requester: need.Requester, Items: need.Items, Purpose: need.Purpose, ConsentID: uuid.New()},
	} {
		if _, err := f.ledger.Check(ctx, nil, n); codeOf(err) != apierr.ConsentMissing {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := f.ledger.Check(ctx, nil, consent.Need{Subject: subject, Requester: need.Requester, Items: need.Items, Purpose: "marketing"}); !hasField(err, "/purpose") {
		t.Errorf("purpose not named: %v", err)
	}

	// Revoked: refused at once with consent.revoked, and the receipt says so.
	if _, err := f.ledger.Revoke(ctx, c.ID, citizen(person(t, 7)), "", ""); codeOf(err) != apierr.ConsentNotFound {
		t.Errorf("another citizen revokes: %v", err)
	}
	r, err := f.ledger.Revoke(ctx, c.ID, citizen(subject), "", "")
	if err != nil || r.Status != consent.Revoked {
		t.Fatalf("revoke: %+v %v", r, err)
	}
	if _, err := f.ledger.Revoke(ctx, c.ID, citizen(subject), "", ""); codeOf(err) != apierr.ConsentState {
		t.Errorf("revoke twice: %v", err)
	}
	if _, err := f.ledger.Check(ctx, nil, need); codeOf(err) != apierr.ConsentRevoked {
		t.Errorf("revoked: %v", err)
	}
	rs, _ := f.ledger.Receipts(ctx, r)
	if len(rs) != 2 || rs[1].Kind != "revoked" {
		t.Errorf("receipts: %+v", rs)
	}

	// Expired: a new consent, then its date passes.
	f.clock.Advance(time.Minute)
	c2 := f.ask(t, bank, subject, "population.last_name")
	if _, err := f.ledger.Approve(ctx, c2.ID, "", citizen(subject), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.Check(ctx, nil, need); err != nil {
		t.Errorf("second consent: %v", err)
	}
	f.clock.Advance(32 * 24 * time.Hour)
	if _, err := f.ledger.Check(ctx, nil, need); codeOf(err) != apierr.ConsentExpired {
		t.Errorf("expired: %v", err)
	}

	// Every refusal alerts: the alert names the code, not the data.
	var payload []byte
	if err := f.pool.QueryRow(ctx, `SELECT payload FROM outbox_event WHERE topic = 'consent.denied' ORDER BY id DESC LIMIT 1`).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var d consent.Denial
	if err := json.Unmarshal(payload, &d); err != nil || d.Code != "consent.expired" || d.Requester != need.Requester {
		t.Errorf("alert: %s %v", payload, err)
	}

	// Uses and refusals read back from the trail.
	trail, _ := audit.ForSubject(ctx, f.pool, subject, 100)
	var used, denied int
	for _, ev := range trail {
		u, ok := consent.ParseObject(ev.Object)
		switch {
		case ev.Action == "consent.used" && ok && u.ConsentID != "" && len(u.Items) == 1:
			used++
		case ev.Action == "consent.denied" && ok && u.Denied != "":
			denied++
		}
	}
	if used != 2 || denied < 8 {
		t.Errorf("trail: %d uses, %d refusals", used, denied)
	}
}

func hasField(err error, path string) bool {
	var e *apierr.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, f := range e.Fields {
		if f.Path == path {
			return true
		}
	}
	return false
}

func TestOfficersConsentIsTheAgencys(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	subject := person(t, 8)
	c := f.ask(t, officer, subject, "addresses.kato")
	if c.Requester != "agency:mlsp" {
		t.Fatalf("requester %q", c.Requester)
	}
	colleague := identity.Principal{Kind: identity.Officer, Subject: "mlsp-2", Agency: "mlsp", Roles: []string{"pension-officer"}}
	if _, err := f.ledger.Get(ctx, c.ID, colleague); err != nil {
		t.Errorf("colleague of the same agency: %v", err)
	}
	if _, err := f.ledger.Get(ctx, c.ID, identity.Principal{Kind: identity.Officer, Subject: "mf-1", Agency: "mf"}); codeOf(err) != apierr.ConsentNotFound {
		t.Errorf("officer of another agency: %v", err)
	}
	list, err := f.ledger.List(ctx, citizen(subject), "", 10)
	if err != nil || len(list) != 1 {
		t.Errorf("citizen's list: %v %v", list, err)
	}
	list, err = f.ledger.List(ctx, bank, "", 10)
	if err != nil || len(list) != 0 {
		t.Errorf("bank's list: %v %v", list, err)
	}
}

// TestRevocationReachesEveryNode: a node that revokes refuses at once;
// another node, which keeps granted consents in memory, within CacheTTL.
func TestRevocationReachesEveryNode(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	other := consent.New(f.pool, f.clock, known, nil) // a second node on the same database
	subject := person(t, 40)
	c := f.ask(t, bank, subject, "population.last_name")
	need := consent.Need{Subject: subject, Requester: "system:halyk-loans", Items: []string{"population.last_name"}, Purpose: "loan application"}
	if _, err := other.Check(ctx, nil, need); codeOf(err) != apierr.ConsentMissing {
		t.Fatalf("before the grant: %v", err)
	}
	if _, err := f.ledger.Approve(ctx, c.ID, "", citizen(subject), ""); err != nil {
		t.Fatal(err)
	}
	// A grant counts on the other node at once: refusals are not cached.
	for _, l := range []*consent.Ledger{f.ledger, other} {
		if _, err := l.Check(ctx, nil, need); err != nil {
			t.Fatalf("after the grant: %v", err)
		}
	}
	if _, err := f.ledger.Revoke(ctx, c.ID, citizen(subject), "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.Check(ctx, nil, need); codeOf(err) != apierr.ConsentRevoked {
		t.Errorf("the revoking node: %v", err)
	}
	if _, err := other.Check(ctx, nil, need); err != nil {
		t.Logf("the other node refused at once: %v", err) // allowed, not promised
	}
	f.clock.Advance(consent.CacheTTL)
	if _, err := other.Check(ctx, nil, need); codeOf(err) != apierr.ConsentRevoked {
		t.Errorf("the other node after %s: %v", consent.CacheTTL, err)
	}
}

// TestSubjectApprovesByCode: the person, signed in, approves with the code
// from the SMS; a wrong or missing code is refused and counted, another
// person and the requester cannot use this way.
func TestSubjectApprovesByCode(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	subject := person(t, 7)
	if _, err := f.notify.SetContact(ctx, subject, notify.Contact{Phone: "+77010000007", Language: "kk"}, "citizen:"+subject, ""); err != nil {
		t.Fatal(err)
	}
	c := f.ask(t, bank, subject, "population.last_name")
	code := f.smsCode(t, "+77010000007")
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if _, err := f.ledger.ApproveByCode(ctx, c.ID, code, citizen(person(t, 8)), ""); codeOf(err) != apierr.ConsentNotFound {
		t.Errorf("another person: %v", err)
	}
	if _, err := f.ledger.ApproveByCode(ctx, c.ID, code, bank, ""); codeOf(err) != apierr.ConsentNotFound {
		t.Errorf("the requester this way: %v", err)
	}
	if _, err := f.ledger.ApproveByCode(ctx, c.ID, "", citizen(subject), ""); codeOf(err) != apierr.Validation {
		t.Errorf("no code: %v", err)
	}
	if _, err := f.ledger.ApproveByCode(ctx, c.ID, wrong, citizen(subject), ""); codeOf(err) != apierr.ConsentCodeInvalid {
		t.Errorf("wrong code: %v", err)
	}
	got, err := f.ledger.ApproveByCode(ctx, c.ID, code, citizen(subject), "")
	if err != nil || got.Status != consent.Granted || got.Channel != "code" {
		t.Fatalf("approve by code: %+v %v", got, err)
	}
	if _, err := f.ledger.ApproveByCode(ctx, c.ID, code, citizen(subject), ""); codeOf(err) != apierr.ConsentState {
		t.Errorf("twice: %v", err)
	}
}
