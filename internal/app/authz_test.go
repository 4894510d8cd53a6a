package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/identity"
)

// The four callers of the authorisation matrix, in the order of a row's
// statuses.
const (
	anonymous    = iota
	otherCitizen // a citizen the data is not about
	wrongOfficer // an officer of an agency that has nothing to do with it (mdai)
	owner        // whoever the route is for: see matrixRow.owner
)

var callerNames = [4]string{"anonymous", "another citizen", "officer of the wrong agency", "owner"}

// matrixRow is one route called by the four callers.
type matrixRow struct {
	route string // the mounted pattern, exactly as the server lists it
	// path is the concrete path; {app} (an application in review with a
	// task), {done} (a completed one), {doc} (its document), {task},
	// {sign} (one awaiting the applicant's signature), {iin} (the
	// applicant), {other} (another citizen), {uuid} (an unknown id) are
	// filled in.
	path string
	body string // JSON for /api/ routes, form values for pages
	// owner is who the route is for: applicant (the citizen whose data it
	// is), officer (gpo special-records-officer: holds the application's
	// task), reader (mia migration-officer: reads the population registry),
	// writer (mia registry-officer), admin (ORTAQ_ADMIN_TOKEN), payer (a
	// payment gateway's system), gateway (an exchange gateway's system:
	// scope exchange-gateway), bank (a system without scopes), public
	// (anyone: the owner is anonymous too).
	owner string
	// want is the status for anonymous, another citizen, the wrong officer
	// and the owner.
	want [4]int
	// header is added to the owner's calls: the GovStack mediator's
	// Information-Mediator-Client naming the calling system.
	header [2]string
}

// authzMatrix covers every mounted route. Reads come before writes, and
// writes are made to fail harmlessly for the owner where they would change
// what later rows read (a decided application cannot be withdrawn).
var authzMatrix = []matrixRow{
	// Operations: public.
	{"GET /healthz", "/healthz", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /readyz", "/readyz", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /metrics", "/metrics", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /api/v1/openapi.json", "/api/v1/openapi.json", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},

	// The service catalogue: public reads, publishing for the administrator.
	{"GET /api/v1/services", "/api/v1/services", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /api/v1/services/{id}", "/api/v1/services/address-certificate", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /api/v1/services/{id}/versions", "/api/v1/services/address-certificate/versions", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"POST /api/v1/services", "/api/v1/services", "id: x", "admin", [4]int{401, 401, 401, 422}, [2]string{}},

	// Applications: the applicant's; officers with a task read them.
	{"POST /api/v1/applications", "/api/v1/applications", `{"service":"nope","inputs":{"iin":"{iin}"}}`, "applicant", [4]int{401, 403, 403, 404}, [2]string{}},
	{"GET /api/v1/applications/{id}", "/api/v1/applications/{app}", "", "applicant", [4]int{401, 404, 404, 200}, [2]string{}},
	{"GET /api/v1/applications/{id}", "/api/v1/applications/{app}", "", "officer", [4]int{401, 404, 404, 200}, [2]string{}},
	{"GET /api/v1/applications/{id}", "/api/v1/applications/{uuid}", "", "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
	{"GET /api/v1/applications/{id}/signing", "/api/v1/applications/{sign}/signing", "", "applicant", [4]int{401, 404, 404, 200}, [2]string{}},
	{"GET /api/v1/applications/{id}/invoice", "/api/v1/applications/{sign}/invoice", "", "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
	{"POST /api/v1/applications/{id}/signature", "/api/v1/applications/{sign}/signature", `{"signature":{"format":"cms","value":"AA=="}}`, "applicant", [4]int{422, 422, 422, 422}, [2]string{}},
	{"POST /api/v1/applications/{id}/withdraw", "/api/v1/applications/{done}/withdraw", "", "applicant", [4]int{401, 404, 403, 409}, [2]string{}},
	{"POST /api/v1/applications/{id}/correction", "/api/v1/applications/{done}/correction", `{"inputs":{}}`, "applicant", [4]int{401, 404, 403, 409}, [2]string{}},
	{"POST /api/v1/payments", "/api/v1/payments", `{"invoice":"X","reference":"r-1","amount_tiyn":1}`, "payer", [4]int{401, 403, 403, 422}, [2]string{}},

	// Documents: the person's; verification and keys are public.
	{"GET /api/v1/documents/{id}", "/api/v1/documents/{doc}", "", "applicant", [4]int{401, 404, 404, 200}, [2]string{}},
	{"GET /api/v1/documents/{id}", "/api/v1/documents/{uuid}", "", "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
	{"POST /api/v1/documents/verify", "/api/v1/documents/verify", `{"jws":"a.b.c"}`, "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /api/v1/keys", "/api/v1/keys", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},

	// Officers' tasks: the holders of the task's agency and role.
	{"GET /api/v1/tasks", "/api/v1/tasks", "", "officer", [4]int{401, 403, 200, 200}, [2]string{}},
	{"GET /api/v1/tasks/{id}", "/api/v1/tasks/{task}", "", "officer", [4]int{401, 403, 404, 200}, [2]string{}},
	{"GET /api/v1/tasks/{id}/attachments/{attachment}", "/api/v1/tasks/{task}/attachments/nope", "", "officer", [4]int{401, 404, 404, 404}, [2]string{}},
	{"POST /api/v1/tasks/{id}/claim", "/api/v1/tasks/{task}/claim", "", "officer", [4]int{401, 403, 404, 200}, [2]string{}},
	{"POST /api/v1/tasks/{id}/release", "/api/v1/tasks/{task}/release", "", "officer", [4]int{401, 403, 404, 200}, [2]string{}},
	{"POST /api/v1/tasks/{id}/decision", "/api/v1/tasks/{task}/decision", `{"decision":"approve"}`, "officer", [4]int{401, 403, 404, 409}, [2]string{}},

	// Calendar: public reads, the administrator's changes.
	{"GET /api/v1/calendar/{year}", "/api/v1/calendar/2026", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /api/v1/calendar/working-days", "/api/v1/calendar/working-days?from=2026-03-02T09:00:00Z&days=3", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"PUT /api/v1/calendar/days/{date}", "/api/v1/calendar/days/2026-03-04", `{}`, "admin", [4]int{401, 401, 401, 422}, [2]string{}},
	{"DELETE /api/v1/calendar/days/{date}", "/api/v1/calendar/days/2026-03-04", "", "admin", [4]int{401, 401, 401, 404}, [2]string{}},

	// Electronic signatures' trust store: the administrator's.
	{"GET /api/v1/esign/roots", "/api/v1/esign/roots", "", "admin", [4]int{401, 401, 401, 200}, [2]string{}},
	{"POST /api/v1/esign/roots", "/api/v1/esign/roots", `{}`, "admin", [4]int{401, 401, 401, 422}, [2]string{}},
	{"DELETE /api/v1/esign/roots/{id}", "/api/v1/esign/roots/{uuid}", "", "admin", [4]int{401, 401, 401, 422}, [2]string{}},
	{"POST /api/v1/esign/revocations", "/api/v1/esign/revocations", `{}`, "admin", [4]int{401, 401, 401, 422}, [2]string{}},

	// The exchange's central authority: public catalogue and CA, enrolment
	// by one-time token, the rest the administrator's.
	{"GET /api/v1/exchange/catalogue", "/api/v1/exchange/catalogue", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /api/v1/exchange/ca", "/api/v1/exchange/ca", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"POST /api/v1/exchange/enrol", "/api/v1/exchange/enrol", `{}`, "public", [4]int{422, 422, 422, 422}, [2]string{}},
	{"POST /api/v1/exchange/timestamp", "/api/v1/exchange/timestamp", `{}`, "public", [4]int{422, 422, 422, 422}, [2]string{}},
	{"POST /api/v1/exchange/members", "/api/v1/exchange/members", `{}`, "admin", [4]int{401, 401, 401, 422}, [2]string{}},
	{"POST /api/v1/exchange/subsystems", "/api/v1/exchange/subsystems", `{}`, "admin", [4]int{401, 401, 401, 422}, [2]string{}},
	{"POST /api/v1/exchange/services", "/api/v1/exchange/services", `{}`, "admin", [4]int{401, 401, 401, 422}, [2]string{}},
	{"POST /api/v1/exchange/access", "/api/v1/exchange/access", `{}`, "admin", [4]int{401, 401, 401, 422}, [2]string{}},
	{"DELETE /api/v1/exchange/access", "/api/v1/exchange/access", `{}`, "admin", [4]int{401, 401, 401, 422}, [2]string{}},
	{"POST /api/v1/exchange/enrolment-tokens", "/api/v1/exchange/enrolment-tokens", `{}`, "admin", [4]int{401, 401, 401, 422}, [2]string{}},
	{"POST /api/v1/exchange/certificates/{serial}/revoke", "/api/v1/exchange/certificates/1/revoke", `{}`, "admin", [4]int{401, 401, 401, 404}, [2]string{}},

	// Notifications: the citizen's own inbox and contact.
	{"GET /api/v1/notifications", "/api/v1/notifications", "", "applicant", [4]int{401, 200, 200, 200}, [2]string{}},
	{"GET /api/v1/notifications/contact", "/api/v1/notifications/contact", "", "applicant", [4]int{401, 200, 403, 200}, [2]string{}},
	{"PUT /api/v1/notifications/contact", "/api/v1/notifications/contact", `{"phone":"bad"}`, "applicant", [4]int{401, 422, 403, 422}, [2]string{}},

	// Sign-in: public; the credentials are in the body.
	{"POST /api/v1/identity/login", "/api/v1/identity/login", `{"subject":"{iin}","password":"` + demo.Password + `"}`, "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"POST /api/v1/identity/login/code", "/api/v1/identity/login/code", `{"challenge":"nope","code":"123456"}`, "public", [4]int{401, 401, 401, 401}, [2]string{}},
	{"POST /api/v1/oauth/token", "/api/v1/oauth/token", "grant_type=client_credentials&client_id=nope&client_secret=nope", "public", [4]int{401, 401, 401, 401}, [2]string{}},

	// OpenID Connect: discovery and keys public; authorize signs the
	// session's person in to the relying party (anonymous: to /login);
	// userinfo is the bearer's own.
	{"GET /.well-known/openid-configuration", "/.well-known/openid-configuration", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /oidc/jwks", "/oidc/jwks", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /oidc/authorize", "/oidc/authorize?response_type=code&client_id=matrix-rp&redirect_uri=https%3A%2F%2Frp.example%2Fcb&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256", "", "public", [4]int{303, 303, 303, 303}, [2]string{}},
	{"GET /oidc/authorize", "/oidc/authorize?response_type=code&client_id=matrix-rp&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&scope=openid", "", "public", [4]int{401, 401, 401, 401}, [2]string{}},
	{"POST /oidc/token", "/oidc/token", "grant_type=client_credentials&client_id=nobody&client_secret=nope", "public", [4]int{401, 401, 401, 401}, [2]string{}},
	{"GET /oidc/userinfo", "/oidc/userinfo", "", "applicant", [4]int{401, 200, 200, 200}, [2]string{}},

	// Registries: readers with a purpose, the citizen their own records,
	// writers of the owner agency.
	{"GET /api/v1/registries", "/api/v1/registries", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /api/v1/registries/{registry}", "/api/v1/registries/population", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /api/v1/registries/{registry}/records", "/api/v1/registries/population/records?purpose=test", "", "reader", [4]int{401, 200, 403, 200}, [2]string{}},
	{"GET /api/v1/registries/{registry}/records/{key}", "/api/v1/registries/population/records/{iin}?purpose=test", "", "applicant", [4]int{401, 403, 403, 200}, [2]string{}},
	{"GET /api/v1/registries/{registry}/records/{key}", "/api/v1/registries/population/records/{iin}?purpose=test", "", "reader", [4]int{401, 403, 403, 200}, [2]string{}},
	{"GET /api/v1/registries/{registry}/records/{key}/history", "/api/v1/registries/population/records/{iin}/history?purpose=test", "", "applicant", [4]int{401, 403, 403, 200}, [2]string{}},
	{"GET /api/v1/registries/{registry}/export", "/api/v1/registries/population/export?purpose=test", "", "reader", [4]int{401, 403, 403, 200}, [2]string{}},
	{"GET /api/v1/registries/{registry}/changes", "/api/v1/registries/population/changes?purpose=test", "", "reader", [4]int{401, 403, 403, 200}, [2]string{}},
	{"GET /api/v1/registries/my-data-usage", "/api/v1/registries/my-data-usage", "", "applicant", [4]int{401, 200, 403, 200}, [2]string{}},
	{"GET /api/v1/classifiers/{classifier}", "/api/v1/classifiers/kato", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /api/v1/catalogue/attributes", "/api/v1/catalogue/attributes?q=address", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /api/v1/catalogue/duplicates", "/api/v1/catalogue/duplicates", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"POST /api/v1/registries/{registry}/records", "/api/v1/registries/population/records", `{}`, "writer", [4]int{401, 403, 403, 422}, [2]string{}},
	{"PUT /api/v1/registries/{registry}/records/{key}", "/api/v1/registries/population/records/{iin}", `{}`, "writer", [4]int{401, 403, 403, 422}, [2]string{}},
	{"POST /api/v1/registries/{registry}/records/{key}/cancel", "/api/v1/registries/population/records/{other}/cancel", `{}`, "writer", [4]int{401, 403, 403, 422}, [2]string{}},
	{"POST /api/v1/registries/{registry}/import", "/api/v1/registries/population/import", `{}`, "writer", [4]int{401, 403, 403, 422}, [2]string{}},

	// The GovStack Digital Registries API: systems named by the mediator.
	{"GET /gs/registries/data/{registry}/{version}", "/gs/registries/data/population/1", "", "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"GET /gs/registries/data/{registry}/{version}/{$}", "/gs/registries/data/population/1/", "", "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"POST /gs/registries/data/{registry}/{version}/create", "/gs/registries/data/population/1/create", `{}`, "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"POST /gs/registries/data/{registry}/{version}/exists", "/gs/registries/data/population/1/exists", `{}`, "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"POST /gs/registries/data/{registry}/{version}/read", "/gs/registries/data/population/1/read", `{}`, "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"PUT /gs/registries/data/{registry}/{version}/update", "/gs/registries/data/population/1/update", `{}`, "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"PUT /gs/registries/data/{registry}/{version}/updateEntries", "/gs/registries/data/population/1/updateEntries", `{}`, "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"PUT /gs/registries/data/{registry}/{version}/update-entries", "/gs/registries/data/population/1/update-entries", `{}`, "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"POST /gs/registries/data/{registry}/{version}/updateOrCreate", "/gs/registries/data/population/1/updateOrCreate", `{}`, "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"POST /gs/registries/data/{registry}/{version}/update-or-create", "/gs/registries/data/population/1/update-or-create", `{}`, "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"DELETE /gs/registries/data/{registry}/{version}/{id}/delete", "/gs/registries/data/population/1/{other}/delete", "", "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"GET /gs/registries/data/{registry}/{version}/{uuid}/readValue/{file}", "/gs/registries/data/population/1/{other}/readValue/x", "", "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"GET /gs/registries/data/{registry}/{version}/{uuid}/read-value/{file}", "/gs/registries/data/population/1/{other}/read-value/x", "", "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"GET /gs/registries/data/mypersonalDataUsage", "/gs/registries/data/mypersonalDataUsage", "", "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"GET /gs/registries/data/MyPersonalDataUsage/1.0", "/gs/registries/data/MyPersonalDataUsage/1.0", "", "bank", [4]int{400, 400, 400, 0}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},

	// The portal: pages with the session cookie; every form posts its
	// token (the matrix sends one, so that what is tested is who, not CSRF).
	{"GET /static/", "/static/style.css", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /verify", "/verify", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"POST /verify", "/verify", "jws=a.b.c", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /lang/{lang}", "/lang/ru?next=/verify", "", "public", [4]int{303, 303, 303, 303}, [2]string{}},
	{"GET /login", "/login", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"POST /login", "/login", "subject={iin}&password=wrong", "public", [4]int{401, 401, 401, 401}, [2]string{}},
	{"POST /login/code", "/login/code", "challenge=nope&code=123456", "public", [4]int{401, 401, 401, 401}, [2]string{}},
	{"GET /documents/{id}", "/documents/{doc}", "", "applicant", [4]int{303, 404, 404, 200}, [2]string{}},
	{"POST /logout", "/logout", "", "applicant", [4]int{303, 303, 303, 303}, [2]string{}},
}

// TestAuthorisationMatrix calls every mounted route as anonymous, as
// another citizen, as an officer of the wrong agency and as its owner, and
// checks each status. It fails when a route is mounted without a row, or a
// row names a route that is not mounted. ORTAQ_MATRIX_PRINT=1 prints what
// each call answered, to fill a new row.
func TestAuthorisationMatrix(t *testing.T) {
	r := apptest.StartConfig(t, app.Config{Workers: 2, AdminToken: "matrix-admin"}, 60)
	ctx := context.Background()
	base := r.Server.URL
	applicantIIN, otherIIN := r.Sample.WithAddress.String(), r.Sample.WithoutAddress.String()

	// Every mounted route has a row, and every row a route.
	var missing, stale []string
	for _, route := range r.Web.Routes() {
		if !slices.ContainsFunc(authzMatrix, func(m matrixRow) bool { return m.route == route }) {
			missing = append(missing, route)
		}
	}
	for _, m := range authzMatrix {
		if !slices.Contains(r.Web.Routes(), m.route) {
			stale = append(stale, m.route)
		}
	}
	if len(missing) > 0 || len(stale) > 0 {
		t.Errorf("the authorisation matrix lacks rows for %q and has rows for unmounted %q", missing, stale)
	}

	// The registries, for the registry rows.
	if err := r.InstallRegistries(ctx); err != nil {
		t.Fatal(err)
	}
	if err := demo.LoadRegistries(ctx, r.Registries, demo.Population(60, demo.PopulationSeed), io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := r.Accounts.SetPerson(ctx, identity.Principal{Kind: identity.Citizen, Subject: applicantIIN}, "+77010000001", demo.Password); err != nil {
		t.Fatal(err)
	}

	// Callers: a bearer token for the API, a session for pages.
	type caller struct {
		header  []string
		session string
	}
	person := func(p identity.Principal) caller {
		c := caller{header: bearer(t, r, p)}
		if p.Kind == identity.Citizen || p.Kind == identity.Officer {
			s, _, err := r.Sessions.Create(ctx, p, identity.MethodPasswordSMS, "")
			if err != nil {
				t.Fatal(err)
			}
			c.session = s
		}
		return c
	}
	officer := func(agency, role string) identity.Principal {
		return identity.Principal{Kind: identity.Officer, Subject: agency + "-" + role, Agency: agency, Roles: []string{role}}
	}
	callers := map[string]caller{
		"applicant": person(citizen(r.Sample.WithAddress)),
		"other":     person(citizen(r.Sample.WithoutAddress)),
		"wrong":     person(officer("mdai", "platform-administrator")),
		"officer":   person(officer("gpo", "special-records-officer")),
		"reader":    person(officer("mia", "migration-officer")),
		"writer":    person(officer("mia", "registry-officer")),
		"payer":     person(identity.Principal{Kind: identity.System, Subject: "pay-gateway", Roles: []string{identity.ScopePayments}}),
		"bank":      person(identity.Principal{Kind: identity.System, Subject: "bank"}),
		"gateway":   person(identity.Principal{Kind: identity.System, Subject: "exchange-gw", Roles: []string{identity.ScopeExchangeGateway}}),
		"admin":     {header: []string{"Authorization", "Bearer matrix-admin"}},
		"public":    {},
	}
	applicant := callers["applicant"].header

	// The applications the rows refer to.
	submit := func(key, body string) string {
		res := call(t, "POST", base+"/api/v1/applications", body, append([]string{"Idempotency-Key", key}, applicant...)...)
		if res.status != http.StatusAccepted {
			t.Fatalf("submit %s: %d %s", key, res.status, res.raw)
		}
		return str(res.body["id"])
	}
	appID := submit("m-review", fmt.Sprintf(`{"service":"criminal-record-certificate","inputs":{"iin":%q,"purpose":"employment","name_changed":false}}`, applicantIIN))
	doneID := submit("m-done", `{"service":"address-certificate","inputs":{"iin":"`+applicantIIN+`"}}`)
	signID := submit("m-sign", fmt.Sprintf(`{"service":"lost-identity-document","inputs":{"iin":%q,"document_type":"id_card","reason":"lost","loss_date":"2026-11-20","pickup_kato":"751110000"}}`, applicantIIN))
	waitStatus(t, base+"/api/v1/applications/"+appID, "in_review", applicant...)
	done := waitStatus(t, base+"/api/v1/applications/"+doneID, "completed", applicant...)
	waitStatus(t, base+"/api/v1/applications/"+signID, "awaiting_signature", applicant...)
	inbox := call(t, "GET", base+"/api/v1/tasks", "", callers["officer"].header...)
	tasks, _ := inbox.body["tasks"].([]any)
	if len(tasks) != 1 {
		t.Fatalf("inbox: %s", inbox.raw)
	}
	// A relying party for the OpenID Connect rows.
	if _, err := r.Accounts.SetClient(ctx, identity.Principal{Kind: identity.System, Subject: "matrix-rp"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Accounts.SetRedirectURIs(ctx, "matrix-rp", []string{"https://rp.example/cb"}); err != nil {
		t.Fatal(err)
	}
	fill := strings.NewReplacer("{app}", appID, "{done}", doneID, "{doc}", str(done.body["document_id"]), "{sign}", signID,
		"{task}", str(tasks[0].(map[string]any)["id"]), "{iin}", applicantIIN, "{other}", otherIIN,
		"{uuid}", "0193a000-0000-7000-8000-000000000000")

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}
	do := func(m matrixRow, c caller, asOwner bool) (int, string) {
		path, body := fill.Replace(m.path), fill.Replace(m.body)
		// Pages get the session cookie, everything else the bearer token.
		page := !strings.HasPrefix(path, "/api/") && !strings.HasPrefix(path, "/gs/") && !strings.HasPrefix(path, "/healthz") &&
			!strings.HasPrefix(path, "/readyz") && !strings.HasPrefix(path, "/metrics") && !strings.HasPrefix(path, "/.well-known/") &&
			(!strings.HasPrefix(path, "/oidc/") || strings.HasPrefix(path, "/oidc/authorize"))
		method, _, _ := strings.Cut(m.route, " ")
		if page && method == "POST" {
			body = strings.TrimPrefix(body+"&csrf=matrix-csrf-token-0000000000000000000000000", "&")
		}
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case page:
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: "csrf", Value: "matrix-csrf-token-0000000000000000000000000"})
			if c.session != "" {
				req.AddCookie(&http.Cookie{Name: identity.SessionCookie, Value: c.session})
			}
		case strings.HasPrefix(body, "grant_type="):
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		case strings.HasPrefix(body, "id:"):
			req.Header.Set("Content-Type", "application/yaml")
		case body != "":
			req.Header.Set("Content-Type", "application/json")
		}
		if !page {
			for i := 0; i+1 < len(c.header); i += 2 {
				req.Header.Set(c.header[i], c.header[i+1])
			}
		}
		if method != "GET" {
			req.Header.Set("Idempotency-Key", "matrix")
		}
		if m.header[0] != "" && asOwner {
			req.Header.Set(m.header[0], m.header[1])
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(raw)
	}
	print := os.Getenv("ORTAQ_MATRIX_PRINT") != ""
	// Signing out ends every caller's session: it goes last, wherever the
	// rows of an area were appended.
	rows := slices.Clone(authzMatrix)
	slices.SortStableFunc(rows, func(a, b matrixRow) int {
		last := func(m matrixRow) int {
			if m.route == "POST /logout" {
				return 1
			}
			return 0
		}
		return last(a) - last(b)
	})
	for _, m := range rows {
		who := [4]caller{callers["public"], callers["other"], callers["wrong"], callers[m.owner]}
		if _, ok := callers[m.owner]; !ok {
			t.Fatalf("%s: unknown owner %q", m.route, m.owner)
		}
		var got [4]int
		var bodies [4]string
		for i, c := range who {
			got[i], bodies[i] = do(m, c, i == owner)
		}
		if print {
			fmt.Printf("%-70s %-9s %v\n", m.route, m.owner, got)
		}
		for i := range got {
			if m.want[i] != 0 && got[i] != m.want[i] {
				t.Errorf("%s %s as %s (owner: %s) = %d; want %d: %.300s", m.route, fill.Replace(m.path), callerNames[i], m.owner, got[i], m.want[i], bodies[i])
			}
			// Nobody but the owner reads the applicant's data: a response
			// names the applicant's IIN only when the request did.
			if i < owner && m.owner != "public" && strings.Contains(bodies[i], applicantIIN) && !strings.Contains(fill.Replace(m.path+m.body), applicantIIN) {
				t.Errorf("%s as %s shows the applicant's IIN: %.300s", m.route, callerNames[i], bodies[i])
			}
			if i < owner && m.owner != "public" && got[i] >= 200 && got[i] < 300 && m.want[i] == 0 {
				t.Errorf("%s as %s = %d: a route for %s answered someone else; give the row its expected statuses", m.route, callerNames[i], got[i], m.owner)
			}
		}
	}
}
