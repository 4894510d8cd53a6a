package registry_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/registry"
)

// ledger stands in for internal/consent: one consent, of one person, to
// one bank, for two items.
type ledger struct {
	subject string
	asked   []registry.ConsentQuery
}

func (l *ledger) CheckRead(_ context.Context, _ pgx.Tx, q registry.ConsentQuery) (string, error) {
	l.asked = append(l.asked, q)
	if q.Subject != l.subject || q.Reader.Actor() != "system:bank" || q.Purpose != "loan" {
		return "", apierr.New(apierr.ConsentMissing)
	}
	for _, it := range q.Items {
		if it != "identity_documents.status" && it != "identity_documents.expires_on" {
			return "", apierr.New(apierr.ConsentMissing, apierr.FieldError{Path: "/items/0", Code: apierr.FieldConsentNotCovered})
		}
	}
	return "c-1", nil
}

func (l *ledger) ExplainUsage(audit.Event) (registry.UsageDetail, bool) {
	return registry.UsageDetail{}, false
}

// TestConsentReads: a reader with no legal basis reads, with the person's
// consent, only the attributes asked for, of a registry whose subject is
// not its key; the read's audit event names the consent.
func TestConsentReads(t *testing.T) {
	s, _ := newStore(t)
	h := apiServer(t, s)
	ids := testIINs(2)
	holder := ids[0]
	if _, err := s.ApplyNow(context.Background(), registry.Change{Registry: "identity_documents", Key: "N12345678", Op: registry.OpCreate,
		Data: map[string]any{"number": "N12345678", "holder_iin": holder, "doc_type": "id_card", "issued_on": "2020-01-01",
			"expires_on": "2030-01-01", "status": "valid"}, Actor: "officer:mia-1", Basis: "test"}); err != nil {
		t.Fatal(err)
	}
	const bank = "system:bank"
	path := "/api/v1/registries/identity_documents/records/N12345678?purpose=loan&fields=status,expires_on"
	// Without a consent checker wired, such a reader is refused.
	if code, _, _ := call(t, h, bank, "GET", path, ""); code != 403 {
		t.Fatalf("no ledger: %d", code)
	}
	l := &ledger{subject: ids[1]}
	s.SetConsent(l)
	if code, out, _ := call(t, h, bank, "GET", path, ""); code != 403 || out["code"] != "consent.missing" || len(l.asked) != 1 || l.asked[0].Subject != holder {
		t.Fatalf("another person's consent: %d %v %+v", code, out, l.asked)
	}
	l.subject = holder
	code, out, raw := call(t, h, bank, "GET", path, "")
	data, _ := out["data"].(map[string]any)
	if code != 200 || len(data) != 2 || data["status"] != "valid" || strings.Contains(raw, holder) {
		t.Fatalf("with consent: %d %s", code, raw)
	}
	if code, _, _ := call(t, h, bank, "GET", "/api/v1/registries/identity_documents/records/N12345678?purpose=loan&fields=holder_iin", ""); code != 403 {
		t.Errorf("an attribute not consented to: %d", code)
	}
	if code, _, _ := call(t, h, bank, "GET", "/api/v1/registries/identity_documents/records/N12345678?purpose=loan&fields=nope", ""); code != 422 {
		t.Errorf("unknown attribute: %d", code)
	}
	if code, _, _ := call(t, h, bank, "GET", "/api/v1/registries/identity_documents/records/X99999999?purpose=loan&fields=status", ""); code != 404 {
		t.Errorf("missing record: %d", code)
	}
	if code, _, _ := call(t, h, bank, "GET", "/api/v1/registries/identity_documents/records/N12345678/history?purpose=loan", ""); code != 403 {
		t.Errorf("history with a consent: %d", code)
	}
	if code, _, _ := call(t, h, bank, "GET", "/api/v1/registries/identity_documents/records?purpose=loan", ""); code != 403 {
		t.Errorf("search with a consent: %d", code)
	}
	// The trail: one read (the refused and the peeking reads rolled back),
	// naming the consent.
	evs, err := audit.ForSubject(context.Background(), s.Pool(), holder, 10)
	if err != nil {
		t.Fatal(err)
	}
	var reads []string
	for _, e := range evs {
		if e.Actor == bank {
			reads = append(reads, e.Object)
		}
	}
	if len(reads) != 1 || !strings.HasSuffix(reads[0], " for consent:c-1") {
		t.Errorf("the bank's reads in the trail: %q", reads)
	}
}

// explaining is a ledger whose own events say consent id, items and
// refusal as internal/consent writes them.
type explaining struct{ ledger }

func (explaining) ExplainUsage(e audit.Event) (registry.UsageDetail, bool) {
	switch e.Action {
	case "consent.used":
		return registry.UsageDetail{ConsentID: "c-1", Items: []string{"population.last_name"}}, true
	case "consent.denied":
		return registry.UsageDetail{Items: []string{"population.last_name"}, Denied: "consent.revoked"}, true
	}
	return registry.UsageDetail{}, false
}

// TestMyDataUsageExplains: the citizen's access log says, for each kind of
// access, the items, the basis and whether it was refused.
func TestMyDataUsageExplains(t *testing.T) {
	s, clk := newStore(t)
	s.SetConsent(&explaining{})
	h := apiServer(t, s)
	me := testIINs(1)[0]
	ctx := context.Background()
	events := []audit.Event{
		{Actor: "citizen:" + me, Action: "registry.population.read", Object: "registry:population/" + me, Purpose: "citizen's own data"},
		{Actor: "officer:mia-1", Action: "registry.population.read", Object: "registry:population/" + me, Purpose: "check"},
		{Actor: "system:bank", Action: "registry.population.read", Object: "registry:population/" + me + " for consent:c-1", Purpose: "loan"},
		{Actor: "system:bank", Action: "consent.used", Object: "consent:c-1 items:population.last_name", Purpose: "loan"},
		{Actor: "system:bank", Action: "consent.denied", Object: "denied:consent.revoked items:population.last_name", Purpose: "loan"},
		{Actor: "system:process", Action: "registry.population.read", Object: "application:1", Purpose: "Law on X, art. 1"},
		{Actor: "system:process", Action: "exchange.read", Object: "application:1", Purpose: "Law on Y; service: KZ/GOV/200/registry/persons"},
	}
	err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
		for i, e := range events {
			e.SubjectIIN, e.At = me, clk.Now().Add(time.Duration(i)*time.Second)
			if err := audit.Record(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code, _, raw := call(t, h, "citizen:"+me, "GET", "/api/v1/registries/my-data-usage", "")
	var got struct{ Reads []registry.DataUsageView }
	if err := json.Unmarshal([]byte(raw), &got); code != 200 || err != nil || len(got.Reads) != len(events) {
		t.Fatalf("%d %v %s", code, err, raw)
	}
	popBasis := ""
	if d, ok := s.Definition("population"); ok {
		popBasis = d.Basis
	}
	want := []struct{ basis, consentID, outcome, item string }{ // newest first
		{"Law on Y", "", "allowed", "service:KZ/GOV/200/registry/persons"},
		{"Law on X, art. 1", "", "allowed", "population"},
		{"", "", "denied", "population.last_name"},
		{"consent", "c-1", "allowed", "population.last_name"},
		{"consent", "c-1", "allowed", "population"},
		{popBasis, "", "allowed", "population"},
		{"own data", "", "allowed", ""},
	}
	for i, w := range want {
		r := got.Reads[i]
		item := ""
		if len(r.Items) > 0 {
			item = r.Items[0]
		}
		if r.Basis != w.basis || r.ConsentID != w.consentID || r.Outcome != w.outcome || item != w.item {
			t.Errorf("%d (%s by %s): basis %q consent %q outcome %q item %q; want %+v", i, r.Action, r.Actor, r.Basis, r.ConsentID, r.Outcome, item, w)
		}
	}
	if got.Reads[2].Denied != "consent.revoked" {
		t.Errorf("the refusal's code: %+v", got.Reads[2])
	}
}
