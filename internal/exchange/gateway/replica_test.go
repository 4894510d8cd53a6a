package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/exchange/gateway"
	"github.com/ortaq/ortaq/internal/exchange/xroad"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/iin"
)

const (
	pdClient  = "KZ/GOV/100/portal"
	pdService = "KZ/GOV/200/registry/pd"
)

// grantPD asks for and grants subject's consent to the portal's use of
// the pd service, valid for d, at the test centre's ledger.
func (e *env) grantPD(subject string, d time.Duration) consent.Consent {
	e.t.Helper()
	ctx := context.Background()
	c, err := e.ledger.Ask(ctx, consent.Request{SubjectIIN: subject, Items: []string{"service:" + pdService}, Purpose: "loan application",
		ValidUntil: time.Now().Add(d), ExchangeClient: pdClient}, "system:portal", "system:portal", "")
	if err != nil {
		e.t.Fatal(err)
	}
	if c, err = e.ledger.Approve(ctx, c.ID, "", identity.Principal{Kind: identity.Citizen, Subject: subject}, ""); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func query(subject string, id uuid.UUID) gateway.ConsentQuery {
	return gateway.ConsentQuery{ConsentID: id.String(), Subject: subject, Client: pdClient, Service: pdService, Purpose: "loan application"}
}

func refusal(err error) string {
	var r *gateway.ConsentRefusal
	if errors.As(err, &r) {
		return r.Code
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return ""
}

// eventually polls cond until it holds or d passes; it returns how long it took.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func subjectIIN(t *testing.T, serial int) string {
	t.Helper()
	n, err := iin.New(time.Date(1985, 3, 4, 0, 0, 0, 0, time.UTC), iin.SexFemale, serial)
	if err != nil {
		t.Fatal(err)
	}
	return n.String()
}

// TestConsentReplica: a replica following the real feed of a test centre
// allows a granted consent, refuses it within a second of its revocation,
// and refuses wrong subjects, clients, services and purposes.
func TestConsentReplica(t *testing.T) {
	e := newEnv(t)
	subject := subjectIIN(t, 201)
	c := e.grantPD(subject, time.Hour)
	r := &gateway.ConsentReplica{URL: e.centre.URL, Token: gatewayToken, Clock: clock.Real{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	eventually(t, 10*time.Second, "replica current", r.Current)
	if got := refusal(r.CheckConsent(ctx, query(subject, c.ID))); got != "" {
		t.Fatalf("granted consent: %s", got)
	}
	for name, q := range map[string]gateway.ConsentQuery{
		"other subject": query(subjectIIN(t, 202), c.ID), "unknown id": query(subject, uuid.New()),
		"malformed id":  {ConsentID: "nope", Subject: subject, Client: pdClient, Service: pdService, Purpose: "loan application"},
		"other client":  {ConsentID: c.ID.String(), Subject: subject, Client: "KZ/GOV/100/other", Service: pdService, Purpose: "loan application"},
		"other service": {ConsentID: c.ID.String(), Subject: subject, Client: pdClient, Service: pdService + "x", Purpose: "loan application"},
		"other purpose": {ConsentID: c.ID.String(), Subject: subject, Client: pdClient, Service: pdService, Purpose: "marketing"},
	} {
		if got := refusal(r.CheckConsent(ctx, q)); got != "consent.missing" {
			t.Errorf("%s: %q", name, got)
		}
	}
	// A consent granted now reaches the replica too.
	later := e.grantPD(subjectIIN(t, 203), time.Hour)
	eventually(t, time.Second, "new grant", func() bool { return r.CheckConsent(ctx, query(subjectIIN(t, 203), later.ID)) == nil })

	if _, err := e.ledger.Revoke(ctx, c.ID, identity.Principal{Kind: identity.Citizen, Subject: subject}, "", ""); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, time.Second, "revocation refused", func() bool {
		return refusal(r.CheckConsent(ctx, query(subject, c.ID))) == "consent.revoked"
	})
	t.Logf("revocation reached the replica in %s", took)
}

// recorder is a fallback that counts its checks.
type recorder struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (f *recorder) CheckConsent(context.Context, gateway.ConsentQuery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.err
}

// TestConsentReplicaNotCurrent: a replica that has not confirmed it is
// current within MaxStale does not answer from memory: it asks the
// fallback, and with none (or a failing one) the check fails as unchecked.
// Expiry is judged by the clock at each check.
func TestConsentReplicaNotCurrent(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	fb := &recorder{}
	r := &gateway.ConsentReplica{Clock: clk, Fallback: fb}
	id := uuid.New()
	subject := subjectIIN(t, 210)
	r.Apply([]gateway.FeedConsent{{ID: id, SubjectIIN: subject, ExchangeClient: pdClient, Items: []string{"population.x", "service:" + pdService},
		Purpose: "loan application", Status: "granted", ValidUntil: clk.Now().Add(time.Hour), Revision: 2}})
	ctx := context.Background()
	if err := r.CheckConsent(ctx, query(subject, id)); err != nil || fb.calls != 1 {
		t.Fatalf("never current: %v, fallback asked %d times", err, fb.calls)
	}
	r.MarkCurrent()
	if err := r.CheckConsent(ctx, query(subject, id)); err != nil || fb.calls != 1 {
		t.Fatalf("current: %v, fallback asked %d times", err, fb.calls)
	}
	clk.Advance(1500 * time.Millisecond)
	fb.err = &gateway.ConsentRefusal{Code: "consent.revoked"}
	if got := refusal(r.CheckConsent(ctx, query(subject, id))); got != "consent.revoked" || fb.calls != 2 {
		t.Fatalf("stale: %q, fallback asked %d times", got, fb.calls)
	}
	fb.err = errors.New("centre down")
	if err := r.CheckConsent(ctx, query(subject, id)); !errors.Is(err, gateway.ErrReplicaNotCurrent) {
		t.Fatalf("stale, centre down: %v", err)
	}
	r.Fallback = nil
	if err := r.CheckConsent(ctx, query(subject, id)); !errors.Is(err, gateway.ErrReplicaNotCurrent) {
		t.Fatalf("stale, no fallback: %v", err)
	}
	// An older state repeated by the feed does not undo a newer one.
	r.Apply([]gateway.FeedConsent{{ID: id, SubjectIIN: subject, ExchangeClient: pdClient, Items: []string{"service:" + pdService},
		Purpose: "loan application", Status: "pending", ValidUntil: clk.Now().Add(time.Hour), Revision: 1}})
	r.MarkCurrent()
	if err := r.CheckConsent(ctx, query(subject, id)); err != nil {
		t.Fatalf("after a repeat: %v", err)
	}
	clk.Advance(time.Hour)
	r.MarkCurrent()
	if got := refusal(r.CheckConsent(ctx, query(subject, id))); got != "consent.expired" {
		t.Fatalf("past valid_until: %q", got)
	}
	// Long after its end the consent is forgotten: memory stays bounded by
	// the consents in force, and a check of it is refused as missing.
	// One that ended that long ago is not even taken from the feed.
	r.Retain = 24 * time.Hour
	clk.Advance(25 * time.Hour)
	r.Sweep()
	r.MarkCurrent()
	if got := refusal(r.CheckConsent(ctx, query(subject, id))); got != "consent.missing" || r.Len() != 0 {
		t.Fatalf("long after its end: %q, %d held", got, r.Len())
	}
	r.Apply([]gateway.FeedConsent{{ID: uuid.New(), SubjectIIN: subject, ExchangeClient: pdClient, Items: []string{"service:" + pdService},
		Purpose: "loan application", Status: "revoked", ValidUntil: clk.Now().Add(-48 * time.Hour), Revision: 3}})
	if r.Len() != 0 {
		t.Errorf("a consent that ended two days ago was kept")
	}
}

// TestAccessReportsShipped: personal-data calls through two gateways with
// replicas reach the centre's audit trail once each — the read on a
// consent as consent.used, the read on a legal basis, the refusals as
// consent.denied — and shipping again (a crash before the cursor moved)
// records nothing twice.
func TestAccessReportsShipped(t *testing.T) {
	e := newEnv(t)
	e.replicas = true
	prov := provider(t)
	e.member("100", "portal")
	e.member("200", "registry")
	e.admin("POST", "/api/v1/exchange/services", map[string]any{"id": pdService, "title": "Person data", "url": prov.URL + "/pd", "personal_data": true})
	e.admin("POST", "/api/v1/exchange/access", map[string]any{"client": pdClient, "service": pdService})
	subject := subjectIIN(t, 220)
	c := e.grantPD(subject, time.Hour)
	a := e.node("100", time.Hour)
	b := e.node("200", time.Hour)
	e.refresh(a, b)
	eventually(t, 10*time.Second, "replicas current", func() bool { return a.replica.Current() && b.replica.Current() })
	get := func(id string, kv ...string) reply {
		return call(t, "GET", a.client+"/r1/"+pdService, nil, append([]string{xroad.HeaderClient, pdClient, xroad.HeaderID, id,
			"Ortaq-Data-Subject", subject, "Ortaq-Purpose", "loan application"}, kv...)...)
	}
	if r := get("m-consent", "Ortaq-Consent", c.ID.String()); r.status != 200 {
		t.Fatalf("with consent: %d %s", r.status, r.body)
	}
	if r := get("m-law", "Ortaq-Legal-Basis", "Law 94-V art. 9"); r.status != 200 {
		t.Fatalf("with a legal basis: %d %s", r.status, r.body)
	}
	if r := get("m-unknown", "Ortaq-Consent", uuid.NewString()); r.status != 403 || !strings.Contains(string(r.body), "consent.missing") {
		t.Fatalf("unknown consent: %d %s", r.status, r.body)
	}
	if r := get("m-nobasis"); r.status != 403 {
		t.Fatalf("no basis: %d %s", r.status, r.body)
	}
	ctx := context.Background()
	for _, n := range []*testNode{a, b} {
		if _, err := n.ShipAccessReports(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{"consent.used m-consent": 1, "exchange.personal_data m-law": 1, "consent.denied m-unknown": 1, "consent.denied m-nobasis": 1}
	check := func(when string) {
		t.Helper()
		evs, err := audit.ForSubject(ctx, e.centreDB, subject, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, ev := range evs {
			if ev.Actor == "exchange:"+pdClient {
				got[ev.Action+" "+ev.RequestID]++
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: centre's trail %v, want %v", when, got, want)
		}
	}
	check("shipped")
	// The answer was lost: the nodes ship everything again.
	for _, n := range []*testNode{a, b} {
		if _, err := n.db.Pool.Exec(ctx, `UPDATE gateway_access_cursor SET upto = 0`); err != nil {
			t.Fatal(err)
		}
		if _, err := n.ShipAccessReports(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check("shipped again")

	// A revocation reaches both nodes within a second: the call is refused.
	if _, err := e.ledger.Revoke(ctx, c.ID, identity.Principal{Kind: identity.Citizen, Subject: subject}, "", ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "revoked on both nodes", func() bool {
		return refusal(a.replica.CheckConsent(ctx, query(subject, c.ID))) == "consent.revoked" &&
			refusal(b.replica.CheckConsent(ctx, query(subject, c.ID))) == "consent.revoked"
	})
	if r := get("m-revoked", "Ortaq-Consent", c.ID.String()); r.status != 403 || !strings.Contains(string(r.body), "consent.revoked") {
		t.Fatalf("revoked consent: %d %s", r.status, r.body)
	}
	if _, err := a.ShipAccessReports(ctx); err != nil {
		t.Fatal(err)
	}
	want["consent.denied m-revoked"] = 1
	check("revoked")
	// The centre refuses a token without the gateway scope.
	if r := call(t, "GET", e.centre.URL+"/api/v1/consents/feed", nil, "Authorization", "Bearer plain-token"); r.status != 403 {
		t.Errorf("feed without the scope: %d", r.status)
	}
}

// BenchmarkReplicaCheck: one check from a replica of 100,000 consents;
// reports the 99th percentile in nanoseconds.
func BenchmarkReplicaCheck(b *testing.B) {
	clk := clock.NewFake(time.Now())
	r := &gateway.ConsentReplica{Clock: clk, MaxStale: time.Hour}
	cs := make([]gateway.FeedConsent, 100_000)
	for i := range cs {
		cs[i] = gateway.FeedConsent{ID: uuid.New(), SubjectIIN: fmt.Sprintf("%012d", i), ExchangeClient: pdClient,
			Items: []string{"service:" + pdService}, Purpose: "loan application", Status: "granted", ValidUntil: clk.Now().Add(time.Hour), Revision: 2}
	}
	r.Apply(cs)
	r.MarkCurrent()
	qs := make([]gateway.ConsentQuery, 1024)
	for i := range qs {
		c := cs[i*97%len(cs)]
		qs[i] = gateway.ConsentQuery{ConsentID: c.ID.String(), Subject: c.SubjectIIN, Client: pdClient, Service: pdService, Purpose: "loan application"}
	}
	ctx := context.Background()
	times := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := r.CheckConsent(ctx, qs[i%len(qs)]); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds()), "p99-ns")
}
