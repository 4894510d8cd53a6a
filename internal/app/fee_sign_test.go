package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/esign"
	"github.com/ortaq/ortaq/internal/identity"
)

// TestSignPayAndReviewOverHTTP: the demo's lost identity document, over
// HTTP: the applicant signs (a signature by someone else is refused),
// the payment gateway confirms the fee (anonymous, citizens and systems
// without the payments scope are refused; a repeated confirmation is
// answered the same), an officer approves, and the notice is issued.
func TestSignPayAndReviewOverHTTP(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 2, 50)
	ctx := context.Background()
	token := func(p identity.Principal) []string {
		tok, _, err := r.Tokens.Issue(ctx, p, time.Hour, "test")
		if err != nil {
			t.Fatal(err)
		}
		return []string{"Authorization", "Bearer " + tok}
	}
	gateway := token(identity.Principal{Kind: identity.System, Subject: "pay-gateway", Roles: []string{identity.ScopePayments}})
	bank := token(identity.Principal{Kind: identity.System, Subject: "bank"})
	applicant := token(identity.Principal{Kind: identity.Citizen, Subject: r.Sample.WithAddress.String()})
	officer := token(identity.Principal{Kind: identity.Officer, Subject: "mia-0001", Agency: "mia", Roles: []string{"migration-officer"}})
	base := r.Server.URL

	ca, err := esign.NewDemoCA()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Signatures.AddRoot(ctx, ca.Chain[0], "test"); err != nil {
		t.Fatal(err)
	}

	res := call(t, "POST", base+"/api/v1/applications",
		fmt.Sprintf(`{"service":"lost-identity-document","inputs":{"iin":%q,"document_type":"id_card","reason":"lost","loss_date":"2026-11-20","pickup_kato":"751110000"}}`, r.Sample.WithAddress),
		append([]string{"Idempotency-Key", "lost-1"}, applicant...)...)
	if res.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", res.status, res.raw)
	}
	app := base + "/api/v1/applications/" + str(res.body["id"])
	view := waitStatus(t, app, "awaiting_signature", applicant...)
	signing, _ := view.body["signing"].(map[string]any)
	if signing == nil || str(signing["url"]) == "" {
		t.Fatalf("no signing in %s", view.raw)
	}
	req := call(t, "GET", base+str(signing["url"]), "", applicant...)
	data, err := base64.StdEncoding.DecodeString(str(req.body["data"]))
	if err != nil || req.status != 200 || str(req.body["sha256"]) != str(signing["sha256"]) {
		t.Fatalf("signing request: %d %s", req.status, req.raw)
	}
	post := func(key *esign.Key, data []byte) response {
		sig, err := key.Sign(data, "cms")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(sig)
		return call(t, "POST", app+"/signature", string(body))
	}
	stranger, _ := ca.Issue(r.Sample.WithoutAddress.String(), esign.IssueOptions{})
	if res := post(stranger, data); res.status != 422 || str(res.body["code"]) != "signature.not_applicant" {
		t.Fatalf("a stranger's signature: %d %s", res.status, res.raw)
	}
	if res := call(t, "POST", app+"/signature", `{"format":"cms","value":"not base64!"}`); res.status != 400 && res.status != 422 {
		t.Fatalf("garbage signature: %d %s", res.status, res.raw)
	}
	own, _ := ca.Issue(r.Sample.WithAddress.String(), esign.IssueOptions{})
	if res := post(own, data); res.status != 200 {
		t.Fatalf("the applicant's signature: %d %s", res.status, res.raw)
	}

	view = waitStatus(t, app, "awaiting_payment", applicant...)
	payment, _ := view.body["payment"].(map[string]any)
	inv := call(t, "GET", app+"/invoice", "", applicant...)
	if payment == nil || inv.status != 200 || str(inv.body["number"]) != str(payment["invoice"]) || str(inv.body["declared"]) != "0.2 MRP" {
		t.Fatalf("invoice: %s / %s", view.raw, inv.raw)
	}
	// The citizen's page says what to pay, how much and by when.
	// The portal page, in the applicant's session.
	session, expires, err := r.Sessions.Create(ctx, identity.Principal{Kind: identity.Citizen, Subject: r.Sample.WithAddress.String()}, identity.MethodPasswordSMS, "")
	if err != nil {
		t.Fatal(err)
	}
	preq, _ := http.NewRequest("GET", base+"/applications/"+str(res.body["id"])+"?lang=ru", nil)
	preq.AddCookie(&http.Cookie{Name: identity.SessionCookie, Value: session, Expires: expires})
	page, err := http.DefaultClient.Do(preq)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if !strings.Contains(string(html), str(inv.body["number"])) || !strings.Contains(string(html), "₸") || !strings.Contains(string(html), "Оплатите") {
		t.Errorf("the portal page does not show the fee:\n%s", html)
	}
	confirm := fmt.Sprintf(`{"invoice":%q,"amount_tiyn":%d,"reference":"halyk-777","paid_at":%q}`,
		str(inv.body["number"]), int64(inv.body["amount_tiyn"].(float64)), time.Now().UTC().Format(time.RFC3339))
	for _, c := range []struct {
		name    string
		headers []string
		status  int
		code    string
	}{
		{"anonymous", nil, 401, "auth.unauthorized"},
		{"the applicant", applicant, 403, "auth.forbidden"},
		{"a bank without the scope", bank, 403, "auth.forbidden"},
		{"an officer", officer, 403, "auth.forbidden"},
		{"the payment gateway", gateway, 200, ""},
		{"the payment gateway again", gateway, 200, ""},
	} {
		res := call(t, "POST", base+"/api/v1/payments", confirm, c.headers...)
		if res.status != c.status || str(res.body["code"]) != c.code {
			t.Errorf("payment by %s: %d %s", c.name, res.status, res.raw)
		}
	}
	wrong := strings.Replace(confirm, "halyk-777", "halyk-778", 1)
	if res := call(t, "POST", base+"/api/v1/payments", wrong, gateway...); res.status != 409 || str(res.body["code"]) != "payment.invoice_closed" {
		t.Errorf("a second payment: %d %s", res.status, res.raw)
	}

	waitStatus(t, app, "in_review", applicant...)
	inbox := call(t, "GET", base+"/api/v1/tasks", "", officer...)
	tasks, _ := inbox.body["tasks"].([]any)
	if len(tasks) != 1 {
		t.Fatalf("inbox: %s", inbox.raw)
	}
	taskURL := base + "/api/v1/tasks/" + str(tasks[0].(map[string]any)["id"])
	if res := call(t, "POST", taskURL+"/claim", "", officer...); res.status != 200 {
		t.Fatalf("claim: %d %s", res.status, res.raw)
	}
	if res := call(t, "POST", taskURL+"/decision", `{"decision":"approve"}`, officer...); res.status != 200 {
		t.Fatalf("decide: %d %s", res.status, res.raw)
	}
	done := waitStatus(t, app, "completed", applicant...)
	if done.body["document_id"] == nil {
		t.Fatalf("no document: %s", done.raw)
	}
}

// waitStatus polls an application until it has status want.
func waitStatus(t *testing.T, url, want string, headers ...string) response {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		res := call(t, "GET", url, "", headers...)
		if str(res.body["status"]) == want {
			return res
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s is %s after 30 s, want %s: %s", url, str(res.body["status"]), want, res.raw)
		}
	}
}
