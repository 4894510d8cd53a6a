package consent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cucumber/godog"

	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/web"
)

// server serves the ledger's API and the GovStack API; the caller is named
// by the test header X-Test-Principal (kind:subject[:agency]).
func (f *fixture) server(t *testing.T) *httptest.Server {
	t.Helper()
	srv := web.New(web.Config{Logger: slog.New(slog.DiscardHandler)})
	srv.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h := r.Header.Get("X-Test-Principal"); h != "" {
				p := strings.Split(h, ":")
				pr := identity.Principal{Kind: identity.Kind(p[0]), Subject: p[1]}
				if len(p) >= 3 {
					pr.Agency = p[2]
				}
				if len(p) == 4 { // kind:subject:agency:scope,scope
					pr.Roles = strings.Split(p[3], ",")
				}
				r = r.WithContext(identity.WithPrincipal(r.Context(), pr))
			}
			next.ServeHTTP(w, r)
		})
	})
	f.ledger.Routes(srv)
	f.ledger.GovStackRoutes(srv)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

type reply struct {
	status int
	body   map[string]any
	raw    string
}

func do(t *testing.T, method, url, who, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		req.Header.Set("X-Test-Principal", who)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return reply{res.StatusCode, m, string(raw)}
}

const bankWho = "system:halyk-loans"

// agreementBody is a data agreement of the bank over two registry items.
func agreementBody(id string) string {
	return `{"dataAgreement":{"id":"` + id + `","version":"1.0","purpose":"loan application","lawfulBasis":"consent","dpia":"https://bank.kz/dpia",
		"dataAttributes":[{"name":"population.last_name","sensitivity":"personal","category":"identity"},{"name":"population.first_name","sensitivity":"personal","category":"identity"}]}}`
}

// TestGovStackScenarios runs GovStack's Consent scenarios
// (testdata/govstack/features) against the API, with our own steps.
func TestGovStackScenarios(t *testing.T) {
	f := setup(t)
	ts := f.server(t)
	base := ts.URL + "/gs/consent"
	suite := godog.TestSuite{
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			var st struct {
				base, agreement string
				res             reply
			}
			sc.Step(`^A URL of a Consent Building Block instance$`, func() error { st.base = base; return nil })
			sc.Step(`^a data agreement ID "([^"]*)"$`, func(id string) error {
				st.agreement = id
				// A valid id names an agreement the bank set up (the
				// scenarios assume one exists); others are left alone.
				if !strings.ContainsAny(id, "_!%") {
					r := do(t, "GET", base+"/config/data-agreement/"+id+"/", "", "")
					if r.status == 404 {
						if r := do(t, "POST", base+"/config/data-agreement/", bankWho, agreementBody(id)); r.status != 200 {
							return fmt.Errorf("seed agreement %s: %d %s", id, r.status, r.raw)
						}
					}
				}
				return nil
			})
			sc.Step(`^I make a GET request to /config/data-agreement/"([^"]*)"$`, func(id string) error {
				st.res = do(t, "GET", st.base+"/config/data-agreement/"+id+"/", "", "")
				return nil
			})
			sc.Step(`^The response should have a status code of (\d+)$`, func(code int) error {
				if st.res.status != code {
					return fmt.Errorf("status %d, want %d: %s", st.res.status, code, st.res.raw)
				}
				return nil
			})
			sc.Step(`^The response should contain the data agreement details for "([^"]*)"$`, func(id string) error {
				da, _ := st.res.body["dataAgreement"].(map[string]any)
				if da["id"] != id || da["purpose"] == "" || da["lawfulBasis"] == nil || st.res.body["revision"] == nil {
					return fmt.Errorf("not the agreement %s: %s", id, st.res.raw)
				}
				return nil
			})
			sc.Step(`^I call a basic public API endpoint$`, func() error {
				st.res = do(t, "GET", st.base+"/config/data-agreements/", "", "")
				return nil
			})
			sc.Step(`^I get some valid JSON data back$`, func() error {
				if st.res.status != 200 || !json.Valid([]byte(st.res.raw)) || st.res.body == nil {
					return fmt.Errorf("%d %s", st.res.status, st.res.raw)
				}
				return nil
			})
		},
		Options: &godog.Options{Format: "progress", Paths: []string{"testdata/govstack/features"}, TestingT: t, Strict: true, NoColors: true},
	}
	if suite.Run() != 0 {
		t.Fatal("GovStack scenarios failed")
	}
}

// TestGovStackConsentRecords: policies with revisions, a data agreement, an
// individual, and consent records on the same ledger: the person opts in
// (signed, with the ledger's receipt), the bank's use is checked against
// it, the person withdraws, and the record's revisions chain.
func TestGovStackConsentRecords(t *testing.T) {
	f := setup(t)
	ts := f.server(t)
	base := ts.URL + "/gs/consent"
	ctx := context.Background()
	subject := person(t, 20)
	me := "citizen:" + subject

	// Policies: created, updated, revisions chained; writes need a system.
	if r := do(t, "POST", base+"/config/policy/", "", `{"policy":{"name":"p","version":"1","url":"https://x"}}`); r.status != 401 {
		t.Errorf("anonymous policy: %d", r.status)
	}
	if r := do(t, "POST", base+"/config/policy/", me, `{"policy":{"name":"p","version":"1","url":"https://x"}}`); r.status != 403 {
		t.Errorf("citizen's policy: %d", r.status)
	}
	r := do(t, "POST", base+"/config/policy/", bankWho, `{"policy":{"id":"bank-privacy","name":"Bank privacy","version":"1","url":"https://bank.kz/privacy/1","jurisdiction":"KZ"}}`)
	if r.status != 200 {
		t.Fatalf("policy: %d %s", r.status, r.raw)
	}
	if r := do(t, "PUT", base+"/config/policy/bank-privacy/", bankWho, `{"policy":{"name":"Bank privacy","version":"2","url":"https://bank.kz/privacy/2"}}`); r.status != 200 {
		t.Fatalf("policy update: %d %s", r.status, r.raw)
	}
	r = do(t, "GET", base+"/config/policy/bank-privacy/revisions/", "", "")
	revs, _ := r.body["revisions"].([]any)
	if r.status != 200 || len(revs) != 2 || revs[1].(map[string]any)["predecessorHash"] != revs[0].(map[string]any)["serializedHash"] {
		t.Errorf("policy revisions: %d %s", r.status, r.raw)
	}
	if r := do(t, "GET", base+"/service/policy/nope/", "", ""); r.status != 404 {
		t.Errorf("unknown policy: %d", r.status)
	}

	// The bank's agreement; an unknown item is refused.
	if r := do(t, "POST", base+"/config/data-agreement/", bankWho, strings.Replace(agreementBody("bad"), "population.first_name", "population.nope", 1)); r.status != 400 || !strings.Contains(r.raw, "item.unknown") {
		t.Errorf("unknown item: %d %s", r.status, r.raw)
	}
	if r := do(t, "POST", base+"/config/data-agreement/", bankWho, agreementBody("loan-1")); r.status != 200 {
		t.Fatalf("agreement: %d %s", r.status, r.raw)
	}

	// The person registers and opts in.
	r = do(t, "POST", base+"/service/individual/", me, `{"individual":{"externalId":"`+subject+`","externalIdType":"iin"}}`)
	ind, _ := r.body["individual"].(map[string]any)
	if r.status != 200 || ind["id"] == "" {
		t.Fatalf("individual: %d %s", r.status, r.raw)
	}
	indID := ind["id"].(string)
	if r := do(t, "POST", base+"/service/individual/", me, `{"individual":{"externalId":"`+person(t, 21)+`"}}`); r.status != 403 {
		t.Errorf("registering another person: %d", r.status)
	}
	if r := do(t, "GET", base+"/service/individual/"+indID+"/", "citizen:"+person(t, 21), ""); r.status != 404 {
		t.Errorf("another citizen reads the individual: %d", r.status)
	}
	r = do(t, "POST", base+"/service/individual/record/data-agreement/loan-1/?individualId="+indID, me, "")
	rec, _ := r.body["consentRecord"].(map[string]any)
	if r.status != 200 || rec["optIn"] != true || rec["state"] != "signed" || rec["signature"] == nil {
		t.Fatalf("opt in: %d %s", r.status, r.raw)
	}
	recID := rec["id"].(string)
	sig := rec["signature"].(map[string]any)
	if v, _ := f.ledger.Verify(ctx, sig["payload"].(string)+"."+sig["signature"].(string)); !v.Valid || v.Receipt.ConsentID != recID {
		t.Errorf("the record's signature is not a valid receipt: %+v", v)
	}
	// The bank's use is checked against the record.
	need := consent.Need{Subject: subject, Requester: "system:halyk-loans", Items: []string{"population.first_name"}, Purpose: "loan application"}
	if _, err := f.ledger.Check(ctx, nil, need); err != nil {
		t.Errorf("check after opt-in: %v", err)
	}
	// Both see it; nobody else does.
	if r := do(t, "GET", base+"/service/individual/record/data-agreement/loan-1/?individualId="+indID, bankWho, ""); r.status != 200 || !strings.Contains(r.raw, recID) {
		t.Errorf("bank reads the record: %d %s", r.status, r.raw)
	}
	if r := do(t, "GET", base+"/service/verification/consent-record/"+recID+"/", "system:other-bank", ""); r.status != 404 {
		t.Errorf("another bank reads the record: %d", r.status)
	}
	// Withdrawal revokes; the revisions chain.
	r = do(t, "PUT", base+"/service/individual/record/consent-record/"+recID+"/", me, `{"consentRecord":{"optIn":false}}`)
	if rec, _ := r.body["consentRecord"].(map[string]any); r.status != 200 || rec["optIn"] != false || rec["status"] != "revoked" {
		t.Fatalf("withdraw: %d %s", r.status, r.raw)
	}
	if _, err := f.ledger.Check(ctx, nil, need); codeOf(err) != "consent.revoked" {
		t.Errorf("check after withdrawal: %v", err)
	}
	r = do(t, "GET", base+"/audit/consent-record/"+recID+"/", me, "")
	revs, _ = r.body["revisions"].([]any)
	if r.status != 200 || len(revs) != 3 {
		t.Fatalf("record revisions: %d %s", r.status, r.raw)
	}
	for i := 1; i < len(revs); i++ {
		if revs[i].(map[string]any)["predecessorHash"] != revs[i-1].(map[string]any)["serializedHash"] {
			t.Errorf("revision %d does not chain", i)
		}
	}
	// A system's record for the person is a pending request: the person
	// approves by code.
	r = do(t, "POST", base+"/service/individual/record/data-agreement/loan-1/?individualId="+indID, bankWho, "")
	if rec, _ := r.body["consentRecord"].(map[string]any); r.status != 200 || rec["optIn"] != false || rec["state"] != "unsigned" {
		t.Errorf("bank asks: %d %s", r.status, r.raw)
	}
	if r := do(t, "POST", base+"/service/individual/record/data-agreement/loan-1/?individualId="+indID, "system:other-bank", ""); r.status != 403 {
		t.Errorf("another bank asks under the bank's agreement: %d %s", r.status, r.raw)
	}
	if r := do(t, "GET", base+"/service/individual/record/consent-record/", me, ""); r.status != 200 || len(r.body["consentRecords"].([]any)) != 2 {
		t.Errorf("records: %d %s", r.status, r.raw)
	}

	// Deleting configuration is audited with the change, and only once.
	if r := do(t, "POST", base+"/config/data-agreement/", bankWho, agreementBody("loan-old")); r.status != 200 {
		t.Fatalf("agreement: %d %s", r.status, r.raw)
	}
	for want, path := range map[string]string{"consent.agreement.deleted": "/config/data-agreement/loan-old/", "consent.policy.deleted": "/config/policy/bank-privacy/"} {
		if r := do(t, "DELETE", base+path, bankWho, ""); r.status != 204 {
			t.Errorf("delete %s: %d %s", path, r.status, r.raw)
		}
		if r := do(t, "DELETE", base+path, bankWho, ""); r.status != 404 {
			t.Errorf("delete %s again: %d %s", path, r.status, r.raw)
		}
		var n int
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE action = $1`, want).Scan(&n); err != nil || n != 1 {
			t.Errorf("%s audited %d times (%v), want once", want, n, err)
		}
	}
}
