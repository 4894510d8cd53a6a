package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/exchange/gateway"
	"github.com/ortaq/ortaq/internal/exchange/xroad"
	"github.com/ortaq/ortaq/internal/iin"
)

// ledger stands in for the centre's consent ledger: one consent.
type ledger struct {
	mu      sync.Mutex
	revoked bool
	asked   []gateway.ConsentQuery
}

const consentID = "6f1c1b8e-2f7a-4b53-9a43-0b1f6f0f4a11"

func (l *ledger) CheckConsent(_ context.Context, q gateway.ConsentQuery) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, q)
	switch {
	case q.ConsentID != consentID || q.Client != "KZ/GOV/100/portal" || q.Service != "KZ/GOV/200/registry/pd":
		return &gateway.ConsentRefusal{Code: "consent.missing"}
	case l.revoked:
		return &gateway.ConsentRefusal{Code: "consent.revoked"}
	}
	return nil
}

func TestPersonalDataWithConsent(t *testing.T) {
	e := newEnv(t)
	l := &ledger{}
	e.consent = l
	prov := provider(t)
	e.member("100", "portal")
	e.member("200", "registry")
	e.admin("POST", "/api/v1/exchange/services", map[string]any{"id": "KZ/GOV/200/registry/pd", "title": "Person data", "url": prov.URL + "/pd", "personal_data": true})
	e.admin("POST", "/api/v1/exchange/access", map[string]any{"client": "KZ/GOV/100/portal", "service": "KZ/GOV/200/registry/pd"})
	a := e.node("100", time.Hour)
	b := e.node("200", time.Hour)
	e.refresh(a, b)
	person, _ := iin.New(time.Date(1988, 1, 1, 0, 0, 0, 0, time.UTC), iin.SexMale, 124)
	get := func(consent string) reply {
		return call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/pd", nil, xroad.HeaderClient, "KZ/GOV/100/portal",
			"Ortaq-Data-Subject", person.String(), "Ortaq-Purpose", "loan application", "Ortaq-Consent", consent)
	}
	if r := get(consentID); r.status != 200 {
		t.Fatalf("with consent: %d %s", r.status, r.body)
	}
	// Both gateways asked the ledger, and both recorded the call with the
	// consent as its basis.
	if len(l.asked) != 2 || l.asked[0].Side != "out" || l.asked[1].Side != "in" || l.asked[0].Subject != person.String() || l.asked[0].Purpose != "loan application" {
		t.Errorf("checks: %+v", l.asked)
	}
	for _, n := range []*testNode{a, b} {
		ev := personalEntries(t, n, person.String())
		if len(ev) != 1 || ev[0].Basis != "consent:"+consentID || ev[0].Purpose != "loan application" {
			t.Fatalf("message log on %s: %+v", n.Member(), ev)
		}
	}
	for name, c := range map[string]string{"unknown": "00000000-0000-0000-0000-000000000000"} {
		if r := get(c); r.status != 403 || r.header.Get(xroad.HeaderError) != xroad.ErrPersonalData || !strings.Contains(string(r.body), "consent.missing") {
			t.Errorf("%s consent: %d %s", name, r.status, r.body)
		}
	}
	l.mu.Lock()
	l.revoked = true
	l.mu.Unlock()
	if r := get(consentID); r.status != 403 || !strings.Contains(string(r.body), "consent.revoked") {
		t.Errorf("revoked consent: %d %s", r.status, r.body)
	}
}

func TestCentreConsent(t *testing.T) {
	var got map[string]any
	var auth string
	centre := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		json.NewDecoder(r.Body).Decode(&got)
		w.Header().Set("Content-Type", "application/json")
		switch got["consent_id"] {
		case "ok":
			w.Write([]byte(`{"consent_id":"ok"}`))
		case "revoked":
			w.WriteHeader(403)
			w.Write([]byte(`{"code":"consent.revoked"}`))
		default:
			w.WriteHeader(401)
			w.Write([]byte(`{"code":"auth.unauthorized"}`))
		}
	}))
	defer centre.Close()
	c := gateway.CentreConsent{URL: centre.URL, Token: "oq_x"}
	q := gateway.ConsentQuery{ConsentID: "ok", Subject: "880101300123", Client: "KZ/COM/1/bank", Service: "KZ/GOV/2/reg/pd", Purpose: "p"}
	if err := c.CheckConsent(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	if auth != "Bearer oq_x" || got["requester"] != "exchange:KZ/COM/1/bank" || got["items"].([]any)[0] != "service:KZ/GOV/2/reg/pd" {
		t.Errorf("asked %v with %q", got, auth)
	}
	q.ConsentID = "revoked"
	var refusal *gateway.ConsentRefusal
	if err := c.CheckConsent(context.Background(), q); !errorsAs(err, &refusal) || refusal.Code != "consent.revoked" {
		t.Errorf("revoked: %v", err)
	}
	q.ConsentID = "other"
	if err := c.CheckConsent(context.Background(), q); err == nil || errorsAs(err, &refusal) {
		t.Errorf("centre refuses the gateway: %v", err)
	}
}

func errorsAs(err error, target **gateway.ConsentRefusal) bool {
	r, ok := err.(*gateway.ConsentRefusal)
	if ok {
		*target = r
	}
	return ok
}
