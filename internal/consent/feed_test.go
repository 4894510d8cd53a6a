package consent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/outbox"
)

const gatewayWho = "system:gateway-100::exchange-gateway"

// askExchange asks for a consent of subject for the exchange client
// KZ/COM/123456789012/loans to the persons service, and grants it as the
// subject.
func (f *fixture) grantExchange(t *testing.T, subject string) consent.Consent {
	t.Helper()
	ctx := context.Background()
	c, err := f.ledger.Ask(ctx, consent.Request{SubjectIIN: subject, Items: []string{"service:KZ/GOV/200/registry/persons"},
		Purpose: "loan application", ValidUntil: start.AddDate(0, 1, 0), ExchangeClient: "KZ/COM/123456789012/loans"},
		"system:halyk-loans", "system:halyk-loans", "")
	if err != nil {
		t.Fatal(err)
	}
	if c, err = f.ledger.Approve(ctx, c.ID, "", citizen(subject), ""); err != nil {
		t.Fatal(err)
	}
	return c
}

func feedOf(t *testing.T, r reply) consent.FeedPage {
	t.Helper()
	var p consent.FeedPage
	if r.status != 200 || json.Unmarshal([]byte(r.raw), &p) != nil {
		t.Fatalf("feed: %d %s", r.status, r.raw)
	}
	return p
}

func statusIn(p consent.FeedPage, id fmt.Stringer) consent.Status {
	var s consent.Status
	for _, c := range p.Consents {
		if c.ID.String() == id.String() {
			s = c.Status
		}
	}
	return s
}

// TestFeed: the consent feed through HTTP: the current set at first, a
// revocation wakes a waiting reader at once, repeats are harmless, and
// only exchange gateways may read it.
func TestFeed(t *testing.T) {
	f := setup(t)
	ts := f.server(t)
	base := ts.URL + "/api/v1/consents/feed"
	subject := person(t, 60)
	c := f.grantExchange(t, subject)
	f.ask(t, bank, person(t, 64), "population.last_name") // not for the exchange: not in the feed

	for who, want := range map[string]int{"": 401, "citizen:" + subject: 403, bankWho: 403, "system:gateway-100": 403} {
		if r := do(t, "GET", base, who, ""); r.status != want {
			t.Errorf("%q reads the feed: %d, want %d (%s)", who, r.status, want, r.raw)
		}
	}
	for _, q := range []string{"?after=x", "?after=1.2", "?after=1.-2.3", "?after=18446744073709551616.0.0", "?wait_ms=26000", "?wait_ms=-1", "?limit=0", "?limit=1001"} {
		if r := do(t, "GET", base+q, gatewayWho, ""); r.status != 422 || r.body["code"] != "request.validation" {
			t.Errorf("%s: %d %s", q, r.status, r.raw)
		}
	}
	first := feedOf(t, do(t, "GET", base, gatewayWho, ""))
	if len(first.Consents) != 1 || statusIn(first, c.ID) != consent.Granted || first.Consents[0].ExchangeClient != "KZ/COM/123456789012/loans" {
		t.Fatalf("first page: %+v", first)
	}
	var audited int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_event WHERE action = 'consent.feed_read'
		AND actor = 'system:gateway-100' AND subject_iin IS NULL`).Scan(&audited); err != nil || audited != 1 {
		t.Errorf("feed reads in the trail: %d %v", audited, err)
	}
	// Paged: one consent a page.
	other := f.grantExchange(t, person(t, 62))
	p1 := feedOf(t, do(t, "GET", base+"?limit=1", gatewayWho, ""))
	if len(p1.Consents) != 1 || !p1.More {
		t.Errorf("page 1: %+v", p1)
	}
	cur := first.Cursor
	// Caught up, a reader waits; a revocation wakes it at once.
	type res struct {
		r  reply
		at time.Duration
	}
	drain := feedOf(t, do(t, "GET", base+"?wait_ms=0&after="+cur, gatewayWho, ""))
	if statusIn(drain, other.ID) != consent.Granted {
		t.Fatalf("the second grant: %+v", drain)
	}
	cur = drain.Cursor
	// The reader may get the grant again until it is below the horizon:
	// read until a page comes back empty.
	for i := 0; i < 50; i++ {
		p := feedOf(t, do(t, "GET", base+"?wait_ms=100&after="+cur, gatewayWho, ""))
		cur = p.Cursor
		if len(p.Consents) == 0 {
			break
		}
	}
	done := make(chan res, 1)
	began := time.Now()
	go func() {
		r := do(t, "GET", base+"?wait_ms=20000&after="+cur, gatewayWho, "")
		done <- res{r, time.Since(began)}
	}()
	time.Sleep(50 * time.Millisecond) // let it wait: the test holds either way
	if _, err := f.ledger.Revoke(context.Background(), c.ID, citizen(subject), "", ""); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if p := feedOf(t, got.r); statusIn(p, c.ID) != consent.Revoked || got.at > 5*time.Second {
		t.Errorf("revocation: after %s %+v", got.at, p)
	}
	// Nothing new: the feed answers after the wait asked for.
	quiet := time.Now()
	p := feedOf(t, do(t, "GET", base+"?wait_ms=200&after="+feedOf(t, got.r).Cursor, gatewayWho, ""))
	if time.Since(quiet) > 5*time.Second {
		t.Errorf("heartbeat took %s", time.Since(quiet))
	}
	for _, c := range p.Consents {
		if c.Status != consent.Revoked {
			t.Errorf("a repeat that is not the revocation: %+v", c)
		}
	}
}

// TestAccessReports: an exchange gateway's reports make the citizen's
// access log (consent.used, exchange.personal_data, consent.denied with
// the officer's alert), once however often they are sent.
func TestAccessReports(t *testing.T) {
	f := setup(t)
	ts := f.server(t)
	base := ts.URL + "/api/v1/consents/access-reports"
	ctx := context.Background()
	subject := person(t, 70)
	c := f.grantExchange(t, subject)
	at := start.Add(time.Hour).Format(time.RFC3339Nano)
	report := func(id, extra string) string {
		return `{"message_id":"` + id + `","side":"in","at":"` + at + `","client":"KZ/COM/123456789012/loans",
			"service":"KZ/GOV/200/registry/persons","subject_iin":"` + subject + `","purpose":"loan application"` + extra + `}`
	}
	body := `{"reports":[` + report("m-1", `,"consent_id":"`+c.ID.String()+`"`) + `,` + report("m-2", `,"legal_basis":"Law 94-V art. 9"`) +
		`,` + report("m-3", `,"consent_id":"`+c.ID.String()+`","refused":"consent.revoked"`) + `]}`
	for who, want := range map[string]int{"": 401, "citizen:" + subject: 403, bankWho: 403} {
		if r := do(t, "POST", base, who, body); r.status != want {
			t.Errorf("%q reports: %d, want %d", who, r.status, want)
		}
	}
	if r := do(t, "POST", base, gatewayWho, body); r.status != 200 || r.body["recorded"] != 3.0 {
		t.Fatalf("report: %d %s", r.status, r.raw)
	}
	if r := do(t, "POST", base, gatewayWho, body); r.status != 200 || r.body["recorded"] != 0.0 || r.body["repeated"] != 3.0 {
		t.Errorf("report again: %d %s", r.status, r.raw)
	}
	evs, err := audit.ForSubject(ctx, f.pool, subject, 100)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range evs {
		if e.Actor == "exchange:KZ/COM/123456789012/loans" {
			seen[e.Action+" "+e.RequestID]++
			if u, ok := consent.ParseObject(e.Object); e.Action == "consent.used" && (!ok || u.ConsentID != c.ID.String() || u.Channel != "exchange" ||
				len(u.Items) != 1 || u.Items[0] != "service:KZ/GOV/200/registry/persons") {
				t.Errorf("consent.used object: %q", e.Object)
			}
			if e.Action == "exchange.personal_data" && (e.Object != "service:KZ/GOV/200/registry/persons" || !strings.Contains(e.Purpose, "(legal basis: Law 94-V art. 9)")) {
				t.Errorf("legal basis event: %+v", e)
			}
		}
	}
	if seen["consent.used m-1"] != 1 || seen["exchange.personal_data m-2"] != 1 || seen["consent.denied m-3"] != 1 || len(seen) != 3 {
		t.Errorf("audit: %v", seen)
	}
	events, err := outbox.After(ctx, f.pool, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, e := range events {
		if e.Topic == "consent.denied" && strings.Contains(string(e.Payload), `"m-3"`) {
			alerts++
		}
	}
	if alerts != 1 {
		t.Errorf("officer's alerts for the refused call: %d", alerts)
	}

	// Bad input: each field named.
	bad := map[string]string{
		`{"reports":[]}`: `"/reports"`,
		`{"reports":[{"message_id":"","side":"up","client":"x","service":"y","subject_iin":"1","purpose":"p","refused":"nope"}]}`: `"/reports/0/side"`,
		`{"reports":[` + report("m-9", `,"consent_id":"not-a-uuid"`) + `]}`:                                                       `"/reports/0/consent_id"`,
		`{"reports":[` + report("m-9", ``) + `]}`:                                                                                 `"/reports/0/legal_basis"`,
	}
	for b, field := range bad {
		if r := do(t, "POST", base, gatewayWho, b); r.status != 422 || !strings.Contains(r.raw, field) {
			t.Errorf("%s: %d %s", b, r.status, r.raw)
		}
	}
	many := make([]string, consent.MaxAccessReports+1)
	for i := range many {
		many[i] = report(fmt.Sprint("n-", i), `,"legal_basis":"law"`)
	}
	if r := do(t, "POST", base, gatewayWho, `{"reports":[`+strings.Join(many, ",")+`]}`); r.status != 422 && r.status != 413 {
		t.Errorf("oversized batch: %d %s", r.status, r.raw)
	}
	if r := do(t, "POST", base, gatewayWho, `{"reports":`); r.status != 400 && r.status != 422 {
		t.Errorf("broken JSON: %d %s", r.status, r.raw)
	}
}

// TestCheckUnrecorded: a gateway's check without recording (its replica
// is not current) records neither a use nor a refusal; others may not ask so.
func TestCheckUnrecorded(t *testing.T) {
	f := setup(t)
	ts := f.server(t)
	subject := person(t, 80)
	c := f.grantExchange(t, subject)
	check := func(who, id string) reply {
		return do(t, "POST", ts.URL+"/api/v1/consents/check", who, `{"subject_iin":"`+subject+`","requester":"exchange:KZ/COM/123456789012/loans",
			"items":["service:KZ/GOV/200/registry/persons"],"purpose":"loan application","consent_id":"`+id+`","unrecorded":true}`)
	}
	if r := check("system:gateway-100", c.ID.String()); r.status != 403 || r.body["code"] != "auth.forbidden" {
		t.Errorf("without the scope: %d %s", r.status, r.raw)
	}
	if r := check(gatewayWho, c.ID.String()); r.status != 200 {
		t.Errorf("allowed: %d %s", r.status, r.raw)
	}
	if r := check(gatewayWho, "00000000-0000-0000-0000-000000000001"); r.status != 403 || r.body["code"] != "consent.missing" {
		t.Errorf("unknown: %d %s", r.status, r.raw)
	}
	evs, _ := audit.ForSubject(context.Background(), f.pool, subject, 100)
	for _, e := range evs {
		if e.Action == "consent.used" || e.Action == "consent.denied" {
			t.Errorf("recorded: %+v", e)
		}
	}
}

func FuzzFeedCursor(f *testing.F) {
	for _, s := range []string{"", "0.0.0", "1.2.3", "18446744073709551615.9223372036854775807.1", "1.2", "a.b.c", "1.-1.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := consent.ParseFeedCursor(s)
		if err != nil {
			return
		}
		if s != "" {
			back, err := consent.ParseFeedCursor(c.String())
			if err != nil || back != c {
				t.Fatalf("%q → %+v → %q → %+v %v", s, c, c.String(), back, err)
			}
		}
	})
}

// TestFeedWakesOtherNodes: a reader waiting on one node is woken by a
// revocation made on another (LISTEN/NOTIFY), long before its wait ends.
func TestFeedWakesOtherNodes(t *testing.T) {
	f := setup(t)
	subject := person(t, 90)
	c := f.grantExchange(t, subject)
	other := consent.New(f.pool, f.clock, known, nil) // a second centre node
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go other.ListenFeed(ctx)
	page, err := other.Feed(ctx, consent.FeedCursor{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := consent.ParseFeedCursor(page.Cursor)
	// Caught up: drain repeats until the reader would wait.
	for range 50 {
		p, err := other.Feed(ctx, cur, 50*time.Millisecond, 0)
		if err != nil {
			t.Fatal(err)
		}
		cur, _ = consent.ParseFeedCursor(p.Cursor)
		if len(p.Consents) == 0 {
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // LISTEN has surely begun: ListenFeed wakes readers when it starts
	type result struct {
		page consent.FeedPage
		took time.Duration
		err  error
	}
	done := make(chan result, 1)
	began := time.Now()
	go func() {
		p, err := other.Feed(ctx, cur, 20*time.Second, 0)
		done <- result{p, time.Since(began), err}
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := f.ledger.Revoke(ctx, c.ID, citizen(subject), "", ""); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || statusIn(r.page, c.ID) != consent.Revoked || r.took > 5*time.Second {
		t.Fatalf("woken after %s: %+v %v", r.took, r.page, r.err)
	}
	t.Logf("the other node's reader had the revocation after %s", r.took)
}

// TestFeedEmpty: with no consents for the exchange, the first call
// answers at once and the next waits for a change (no busy loop).
func TestFeedEmpty(t *testing.T) {
	f := setup(t)
	ts := f.server(t)
	base := ts.URL + "/api/v1/consents/feed"
	began := time.Now()
	first := feedOf(t, do(t, "GET", base+"?wait_ms=5000", gatewayWho, ""))
	if time.Since(began) > 4*time.Second || len(first.Consents) != 0 {
		t.Fatalf("first call: %s %+v", time.Since(began), first)
	}
	began = time.Now()
	next := feedOf(t, do(t, "GET", base+"?wait_ms=300&after="+first.Cursor, gatewayWho, ""))
	if took := time.Since(began); took < 250*time.Millisecond || len(next.Consents) != 0 || next.WaitedMillis < 250 {
		t.Fatalf("caught up: answered after %s (waited %d ms) %+v", took, next.WaitedMillis, next)
	}
}
