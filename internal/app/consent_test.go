package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/cli"
	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/exchange/catalogue"
	"github.com/ortaq/ortaq/internal/exchange/gateway"
	"github.com/ortaq/ortaq/internal/exchange/xroad"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/notify"
	"github.com/ortaq/ortaq/internal/registry"
)

// demoLastName is the last name of one of the first demo citizens, as the
// population registry holds it.
func demoLastName(id string) string {
	for _, c := range demo.Population(100, demo.PopulationSeed) {
		if c.IIN.String() == id {
			return c.LastName
		}
	}
	return ""
}

// TestBankReadsWithConsent is issue 7's "done when": a bank's system reads a
// citizen's registry data only after the citizen approved by the code sent
// by SMS; revocation takes effect at once; the citizen's access log shows
// every read and every refused attempt.
func TestBankReadsWithConsent(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 0, 10)
	ctx := context.Background()
	if err := r.InstallRegistries(ctx); err != nil {
		t.Fatal(err)
	}
	person := r.Sample.WithAddress.String()
	if _, err := r.Notify.SetContact(ctx, person, notify.Contact{Phone: "+77010000042", Language: "kk"}, "citizen:"+person, ""); err != nil {
		t.Fatal(err)
	}
	bank := bearer(t, r, identity.Principal{Kind: identity.System, Subject: "halyk-loans"})
	me := bearer(t, r, citizen(r.Sample.WithAddress))
	base := r.Server.URL
	read := func() response {
		return call(t, "GET", base+"/api/v1/registries/population/records/"+person+"?purpose=loan+application&fields=last_name,first_name", "", bank...)
	}

	// Without consent: refused, named, recorded.
	if res := read(); res.status != 403 || str(res.body["code"]) != "consent.missing" {
		t.Fatalf("without consent: %d %s", res.status, res.raw)
	}
	// The bank asks; the code goes out by SMS; a wrong code is refused.
	res := call(t, "POST", base+"/api/v1/consents", `{"subject_iin":"`+person+`","items":["population.last_name","population.first_name"],
		"purpose":"loan application","valid_until":"`+time.Now().AddDate(0, 1, 0).UTC().Format(time.RFC3339)+`","requester_name":"Halyk Bank"}`, bank...)
	if res.status != 201 {
		t.Fatalf("ask: %d %s", res.status, res.raw)
	}
	id := str(res.body["id"])
	if res := call(t, "POST", base+"/api/v1/consents", `{"subject_iin":"`+person+`","items":["population.nope"],"purpose":"x","valid_until":"2099-01-01T00:00:00Z"}`, bank...); res.status != 422 || !strings.Contains(res.raw, "item.unknown") {
		t.Errorf("unknown item: %d %s", res.status, res.raw)
	}
	// The outbox hands out an event only once every older transaction in
	// the cluster has ended, and other tests' run in parallel: wait for it.
	var sms []notify.Sent
	for deadline := time.Now().Add(20 * time.Second); len(sms) == 0; {
		if _, err := r.Notify.Consume(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Notify.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
		var err error
		if sms, err = notify.DevOutbox(ctx, r.DB.Pool, notify.OutboxFilter{To: "+77010000042", Channel: notify.SMS, Limit: 1}); err != nil {
			t.Fatal(err)
		}
		if len(sms) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no SMS with the code within 20 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	code := regexp.MustCompile(`\b[0-9]{6}\b`).FindString(sms[0].Body)
	if code == "" || !strings.Contains(sms[0].Body, "Halyk Bank") {
		t.Fatalf("sms body %q", sms[0].Body)
	}
	if res := read(); res.status != 403 || str(res.body["code"]) != "consent.missing" {
		t.Errorf("pending consent: %d %s", res.status, res.raw)
	}
	other := bearer(t, r, identity.Principal{Kind: identity.System, Subject: "other-bank"})
	if res := call(t, "POST", base+"/api/v1/consents/"+id+"/approve", `{"code":"`+code+`"}`, other...); res.status != 404 {
		t.Errorf("another system approves: %d %s", res.status, res.raw)
	}
	res = call(t, "POST", base+"/api/v1/consents/"+id+"/approve", `{"code":"`+code+`"}`, bank...)
	if res.status != 200 || str(res.body["status"]) != "granted" {
		t.Fatalf("approve: %d %s", res.status, res.raw)
	}
	receipts, _ := res.body["receipts"].([]any)
	if len(receipts) != 1 {
		t.Fatalf("receipts: %s", res.raw)
	}
	jws := str(receipts[0].(map[string]any)["jws"])
	if v := call(t, "POST", base+"/api/v1/consents/receipts/verify", `{"jws":"`+jws+`"}`); v.status != 200 || v.body["valid"] != true {
		t.Errorf("verify: %d %s", v.status, v.raw)
	}

	// Now the bank reads the two attributes, and only them.
	res = read()
	if res.status != 200 {
		t.Fatalf("with consent: %d %s", res.status, res.raw)
	}
	data, _ := res.body["data"].(map[string]any)
	if len(data) != 2 || data["last_name"] != demoLastName(r.Sample.WithAddress.String()) {
		t.Errorf("data read: %v", data)
	}
	// Not an attribute outside the consent, nor another history or search.
	if res := call(t, "GET", base+"/api/v1/registries/population/records/"+person+"?purpose=loan+application&fields=birth_date", "", bank...); res.status != 403 || !strings.Contains(res.raw, "item.not_covered") {
		t.Errorf("birth date: %d %s", res.status, res.raw)
	}
	if res := call(t, "GET", base+"/api/v1/registries/population/records?purpose=loan+application", "", bank...); res.status != 403 {
		t.Errorf("search: %d %s", res.status, res.raw)
	}
	if res := call(t, "GET", base+"/api/v1/registries/population/records/"+person+"?purpose=marketing&fields=last_name", "", bank...); res.status != 403 || !strings.Contains(res.raw, "purpose.mismatch") {
		t.Errorf("other purpose: %d %s", res.status, res.raw)
	}

	// The citizen sees the consent and revokes it; the next read is refused.
	if res := call(t, "GET", base+"/api/v1/consents", "", me...); res.status != 200 || !strings.Contains(res.raw, id) {
		t.Errorf("citizen's consents: %d %s", res.status, res.raw)
	}
	if res := call(t, "POST", base+"/api/v1/consents/"+id+"/revoke", "", me...); res.status != 200 || str(res.body["status"]) != "revoked" {
		t.Fatalf("revoke: %d %s", res.status, res.raw)
	}
	if res := read(); res.status != 403 || str(res.body["code"]) != "consent.revoked" {
		t.Errorf("after revocation: %d %s", res.status, res.raw)
	}

	// "Who used my data": the read with its consent, the refusals, the
	// consent's life.
	res = call(t, "GET", base+"/api/v1/registries/my-data-usage", "", me...)
	if res.status != 200 {
		t.Fatalf("my data usage: %d %s", res.status, res.raw)
	}
	var usage struct {
		Reads []registry.DataUsageView `json:"reads"`
	}
	if err := json.Unmarshal([]byte(res.raw), &usage); err != nil {
		t.Fatal(err)
	}
	var used, denied, read1 int
	var codes []string
	for _, u := range usage.Reads {
		switch {
		case u.Action == "consent.used" && u.ConsentID == id && u.Basis == "consent" && slices.Equal(u.Items, []string{"population.last_name", "population.first_name"}):
			used++
		case u.Action == "consent.denied" && u.Outcome == "denied":
			denied++
			codes = append(codes, u.Denied)
		case u.Action == "registry.population.read" && u.Actor == "system:halyk-loans" && u.ConsentID == id && u.Basis == "consent":
			read1++
		}
	}
	if used != 1 || read1 != 1 || denied != 5 || !slices.Contains(codes, "consent.revoked") {
		t.Errorf("usage: %d uses, %d reads, %d refusals %v\n%s", used, read1, denied, codes, res.raw)
	}
	// Every refusal alerted the data-protection officer.
	var alerts int
	if err := r.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox_event WHERE topic = 'consent.denied'`).Scan(&alerts); err != nil || alerts != 5 {
		t.Errorf("alerts: %d %v", alerts, err)
	}
	// ... in their inbox, naming the requester and the refusal but not the
	// person's IIN; an officer of another role does not see them.
	dpo := bearer(t, r, identity.Principal{Kind: identity.Officer, Subject: "mdai-dpo", Agency: notify.DataProtectionOfficers.Agency,
		Roles: []string{notify.DataProtectionOfficers.Role}})
	admin := bearer(t, r, identity.Principal{Kind: identity.Officer, Subject: "mdai-admin", Agency: "mdai", Roles: []string{"platform-administrator"}})
	var inbox struct {
		Notifications []struct{ Topic, Title, Text string }
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := r.Notify.Consume(ctx); err != nil {
			t.Fatal(err)
		}
		res := call(t, "GET", base+"/api/v1/notifications?limit=100", "", append(dpo, "Accept-Language", "en")...)
		if res.status != 200 {
			t.Fatalf("dpo inbox: %d %s", res.status, res.raw)
		}
		if err := json.Unmarshal([]byte(res.raw), &inbox); err != nil {
			t.Fatal(err)
		}
		if len(inbox.Notifications) >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var revoked int
	for _, m := range inbox.Notifications {
		if m.Topic != "consent.denied" || !strings.Contains(m.Text, "system:halyk-loans") || strings.Contains(m.Text, person) ||
			!strings.Contains(m.Text, person[8:]) || m.Title != "Attempt to read personal data without a basis" {
			t.Errorf("alert: %+v", m)
		}
		if strings.Contains(m.Text, "consent.revoked") {
			revoked++
		}
	}
	if len(inbox.Notifications) != 5 || revoked == 0 {
		t.Errorf("dpo inbox: %d alerts, %d revoked", len(inbox.Notifications), revoked)
	}
	if res := call(t, "GET", base+"/api/v1/notifications", "", admin...); res.status != 200 || strings.Contains(res.raw, "consent.denied") {
		t.Errorf("another role's inbox: %d %s", res.status, res.raw)
	}
}

// TestConsentCommand: `ortaq consent list` shows consents with the IIN
// masked; `ortaq consent revoke` ends one, and the ledger refuses its use.
func TestConsentCommand(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 0, 10)
	ctx := context.Background()
	if err := r.InstallRegistries(ctx); err != nil {
		t.Fatal(err)
	}
	person := r.Sample.WithAddress.String()
	c, err := r.Consents.Ask(ctx, consent.Request{SubjectIIN: person, Items: []string{"population.last_name"}, Purpose: "loan application",
		ValidUntil: time.Now().AddDate(0, 1, 0)}, "system:halyk-loans", "system:halyk-loans", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Consents.Approve(ctx, c.ID, "", citizen(r.Sample.WithAddress), ""); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := cli.Main([]string{"consent", "list", "--database-url", r.DB.URL, "--log-level", "warn"}, &out, &errOut); code != 0 {
		t.Fatalf("list exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), c.ID.String()) || !strings.Contains(out.String(), "granted") || strings.Contains(out.String(), person) ||
		!strings.Contains(out.String(), "********"+person[8:]) {
		t.Errorf("list:\n%s", out.String())
	}
	out.Reset()
	if code := cli.Main([]string{"consent", "revoke", "--database-url", r.DB.URL, "--log-level", "warn", "--actor", "operator:dpo", c.ID.String()}, &out, &errOut); code != 0 {
		t.Fatalf("revoke exited %d: %s", code, errOut.String())
	}
	if _, err := r.Consents.Check(ctx, nil, consent.Need{Subject: person, Requester: "system:halyk-loans", Items: c.Items, Purpose: c.Purpose}); err == nil || !strings.Contains(err.Error(), "consent.revoked") {
		t.Errorf("after revoke: %v", err)
	}
	if code := cli.Main([]string{"consent", "revoke", "--database-url", r.DB.URL, "--log-level", "warn", c.ID.String()}, &out, &errOut); code == 0 {
		t.Error("revoking twice succeeded")
	}
}

// TestGatewayChecksConsentWithTheCentre: an exchange gateway's consent
// check (gateway.CentreConsent) against the centre's ledger: the bank's
// client subsystem named in the consent may call the service; revoked, it
// may not.
func TestGatewayChecksConsentWithTheCentre(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 0, 10)
	ctx := context.Background()
	if err := r.Exchange.AddMember(ctx, catalogue.Member{ID: xroad.ClientID{Instance: "KZ", Class: "GOV", Member: "200"}, Name: "Registry"}, "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.Exchange.AddSubsystem(ctx, catalogue.Subsystem{ID: xroad.ClientID{Instance: "KZ", Class: "GOV", Member: "200", Subsystem: "registry"}, Name: "registry"}, "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.Exchange.PutService(ctx, catalogue.Service{ID: xroad.ServiceID{ClientID: xroad.ClientID{Instance: "KZ", Class: "GOV", Member: "200", Subsystem: "registry"}, Code: "persons"},
		Title: "Persons", URL: "http://provider", PersonalData: true}, "test"); err != nil {
		t.Fatal(err)
	}
	person := r.Sample.WithAddress.String()
	c, err := r.Consents.Ask(ctx, consent.Request{SubjectIIN: person, Items: []string{"service:KZ/GOV/200/registry/persons"}, Purpose: "loan application",
		ValidUntil: time.Now().AddDate(0, 1, 0), ExchangeClient: "KZ/COM/123456789012/loans"}, "system:halyk-loans", "system:halyk-loans", "")
	if err != nil {
		t.Fatal(err)
	}
	gw := bearer(t, r, identity.Principal{Kind: identity.System, Subject: "gateway-123456789012", Roles: []string{identity.ScopeExchangeGateway}})
	centre := gateway.CentreConsent{URL: r.Server.URL, Token: strings.TrimPrefix(gw[1], "Bearer ")}
	// A system without the gateway scope may not check for the exchange's
	// clients.
	plain := bearer(t, r, identity.Principal{Kind: identity.System, Subject: "halyk-loans"})
	var refused *gateway.ConsentRefusal
	if err := (gateway.CentreConsent{URL: r.Server.URL, Token: strings.TrimPrefix(plain[1], "Bearer ")}).CheckConsent(ctx, gateway.ConsentQuery{
		ConsentID: c.ID.String(), Subject: person, Client: "KZ/COM/123456789012/loans", Service: "KZ/GOV/200/registry/persons",
		Purpose: "loan application", MessageID: "m-0", Side: "out"}); err == nil || errors.As(err, &refused) {
		t.Errorf("a plain system checks for the exchange: %v", err)
	}
	q := gateway.ConsentQuery{ConsentID: c.ID.String(), Subject: person, Client: "KZ/COM/123456789012/loans", Service: "KZ/GOV/200/registry/persons",
		Purpose: "loan application", MessageID: "m-1", Side: "out"}
	var refusal *gateway.ConsentRefusal
	if err := centre.CheckConsent(ctx, q); !errors.As(err, &refusal) || refusal.Code != "consent.missing" {
		t.Fatalf("pending: %v", err)
	}
	if _, err := r.Consents.Approve(ctx, c.ID, "", citizen(r.Sample.WithAddress), ""); err != nil {
		t.Fatal(err)
	}
	if err := centre.CheckConsent(ctx, q); err != nil {
		t.Fatalf("granted: %v", err)
	}
	other := q
	other.Client = "KZ/COM/999999999999/other"
	if err := centre.CheckConsent(ctx, other); !errors.As(err, &refusal) || refusal.Code != "consent.missing" {
		t.Errorf("another client: %v", err)
	}
	if _, err := r.Consents.Revoke(ctx, c.ID, citizen(r.Sample.WithAddress), "", ""); err != nil {
		t.Fatal(err)
	}
	if err := centre.CheckConsent(ctx, q); !errors.As(err, &refusal) || refusal.Code != "consent.revoked" {
		t.Errorf("revoked: %v", err)
	}
	if err := (gateway.CentreConsent{URL: r.Server.URL, Token: "oq_" + strings.Repeat("x", 43)}).CheckConsent(ctx, q); err == nil || errors.As(err, &refusal) {
		t.Errorf("an unknown token: %v", err)
	}
}
