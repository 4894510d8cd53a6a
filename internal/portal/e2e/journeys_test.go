package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/notify"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/portal/portaltest"
)

func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }

// TestCitizenAppliesForAnAutomaticServiceAndDownloadsTheDocument: a
// visitor finds the service by searching, is asked to sign in when they
// want to apply, applies, watches the status page until the platform has
// decided, opens the signed document and downloads it.
func TestCitizenAppliesForAnAutomaticServiceAndDownloadsTheDocument(t *testing.T) {
	r := apptest.Start(t, 2, 50)
	citizen := r.Sample.WithAddress.String()
	phone := portaltest.New(t, r).Citizen(citizen)
	b := newBrowser(t, r)

	b.visit("/")
	b.screenshot("catalogue")
	b.fill(`form[role="search"] input[name="q"]`, "address")
	b.click(`form[role="search"] button`)
	b.click(`a[href="/services/address-certificate"]`)
	b.click("#sign-in-to-apply")
	b.login(citizen, portaltest.Password, phone, false)
	if p := b.path(); p != "/services/address-certificate" {
		t.Fatalf("after signing in the citizen is on %s; want back on the service page", p)
	}
	b.screenshot("service")
	if got := b.attr("#f-iin", "value"); got != citizen {
		t.Errorf("the form's IIN = %q; want the signed-in citizen's %s", got, citizen)
	}
	b.click(`form.apply-form button[type="submit"]:not([formaction])`)
	if !strings.HasPrefix(b.path(), "/applications/") {
		t.Fatalf("after applying the citizen is on %s; want the application's status page", b.path())
	}
	b.waitFor(`#app-status[data-status="completed"]`, 30*time.Second)
	b.screenshot("application")
	b.click("#document-link")
	b.screenshot("document")
	downloadTheDocument(t, b)
}

// TestOfficerApprovesAReviewedApplication: a citizen applies for a
// service with a review; an officer of the reviewing agency finds the task
// in their inbox, claims it and approves it; the citizen sees the decision.
func TestOfficerApprovesAReviewedApplication(t *testing.T) {
	r := apptest.Start(t, 2, 50)
	citizen := r.Sample.WithAddress.String()
	pt := portaltest.New(t, r)
	phone := pt.Citizen(citizen)
	officerPhone := pt.Officer("gpo-records-1", "gpo", "special-records-officer")

	c := newBrowser(t, r)
	c.signIn(citizen, portaltest.Password, phone, false)
	c.visit("/services/criminal-record-certificate")
	c.fill("#f-purpose", "employment")
	c.click(`form.apply-form button[type="submit"]:not([formaction])`)
	application := c.path()
	c.waitFor(`#app-status[data-status="in_review"]`, 30*time.Second)

	o := newBrowser(t, r)
	o.signIn("gpo-records-1", portaltest.Password, officerPhone, true)
	o.visit("/officer")
	o.screenshot("officer-inbox")
	o.click(`#inbox a[href^="/officer/tasks/"]`)
	o.click("#claim-form button")
	o.fill("#approve-comment", "Checked against the special records.")
	o.screenshot("officer-task")
	o.click("#approve-submit")
	if !o.has("#task-decision") {
		t.Errorf("the task page shows no decision after approving (at %s)", o.path())
	}

	c.visit(application)
	c.waitFor(`#app-status[data-status="completed"]`, 30*time.Second)
	if !c.has("#document-link") {
		t.Errorf("the approved application has no document link")
	}
	c.visit("/applications")
	if !c.has(`#applications a[href="` + application + `"]`) {
		t.Errorf("my applications do not list %s", application)
	}
}

// downloadTheDocument: on a document's page, the signed document downloads
// as a file, anyone can verify what was downloaded on /verify, and the QR
// code's link opens the public check.
func downloadTheDocument(t *testing.T, b *browser) {
	t.Helper()
	res, jws := b.fetch(b.attr("#download-jws", "href"))
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") || strings.Count(string(jws), ".") != 2 {
		t.Fatalf("download = %d %q:\n%.300s", res.StatusCode, res.Header.Get("Content-Disposition"), jws)
	}
	if !b.has("svg#document-qr") {
		t.Error("the document page has no QR code")
	}
	b.click("#verify-link")
	if got := b.attr("#facts-status", "data-status"); got != "valid" {
		t.Errorf("the QR's public check says %q; want valid", got)
	}
	b.visit("/verify")
	b.fill(`#verify-jws textarea[name="jws"]`, string(jws))
	b.click(`#verify-jws button[type="submit"]`)
	if !b.has("#verify-result.status-completed") {
		t.Errorf("/verify does not confirm the downloaded document")
	}
}

// TestCitizenApprovesAConsentByCodeAndSeesTheAccess: a bank asks for a
// citizen's surname; the citizen approves on "My consents" with the code
// from the SMS; the bank reads it; "Who used my data" shows the read.
func TestCitizenApprovesAConsentByCodeAndSeesTheAccess(t *testing.T) {
	r := apptest.Start(t, 2, 50)
	ctx := context.Background()
	if err := r.InstallRegistries(ctx); err != nil {
		t.Fatal(err)
	}
	person := r.Sample.WithAddress.String()
	phone := portaltest.New(t, r).Citizen(person)
	if _, err := r.Notify.SetContact(ctx, person, notify.Contact{Phone: phone, Language: "kk"}, "citizen:"+person, ""); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, r)
	b.signIn(person, portaltest.Password, phone, false)

	bank := identity.Principal{Kind: identity.System, Subject: "halyk-loans"}
	status, out := portaltest.API(t, r, bank, "POST", "/api/v1/consents", `{"subject_iin":"`+person+`","items":["population.last_name"],
		"purpose":"loan application","valid_until":"`+time.Now().AddDate(0, 1, 0).UTC().Format(time.RFC3339)+`","requester_name":"Halyk Bank"}`)
	if status != 201 {
		t.Fatalf("the bank's request: %d %v", status, out)
	}
	id, _ := out["id"].(string)
	code := b.smsCode(phone, "Halyk Bank")

	b.visit("/consents")
	b.screenshot("consents")
	b.fill("#code-"+id, code)
	b.click(`form[action="/consents/` + id + `/approve"] button[type="submit"]`)
	if got := b.attr("#consent-"+id+" dd.consent-status", "data-status"); got != "granted" {
		t.Fatalf("after approving, the consent is %q; want granted", got)
	}
	if status, out := portaltest.API(t, r, bank, "GET", "/api/v1/registries/population/records/"+person+"?purpose=loan+application&fields=last_name", ""); status != 200 {
		t.Fatalf("the bank's read with the consent: %d %v", status, out)
	}
	b.visit("/my-data")
	b.screenshot("my-data")
	if !b.has(`#access-log tr.access-allowed[data-action="consent.used"]`) {
		t.Errorf("who used my data does not show the bank's read under the consent")
	}
}

// TestErrorStatesAreAccessible: a form showing its errors next to the
// fields and an error page pass axe too.
func TestErrorStatesAreAccessible(t *testing.T) {
	r := apptest.Start(t, 2, 50)
	b := newBrowser(t, r)
	b.visit("/login")
	b.fill("#subject", "12345")
	b.click(`form[action="/login"] button[type="submit"]`)
	if !b.has("#subject-error") {
		t.Errorf("a malformed IIN shows no error next to the field")
	}
	phone := portaltest.New(t, r).Citizen(r.Sample.WithAddress.String())
	b.signIn(r.Sample.WithAddress.String(), portaltest.Password, phone, false)
	if status := b.visit("/applications/01a20b29-03dd-7a6b-9bf1-125590dc8df6"); status != 404 {
		t.Errorf("an unknown application = %d; want the 404 page", status)
	}
	b.visit("/services/criminal-record-certificate")
	b.fill("#f-purpose", "")
	b.click(`form.apply-form button[type="submit"]:not([formaction])`)
	if !b.has("#f-purpose-error") {
		t.Errorf("applying without a purpose shows no error next to the field (at %s)", b.path())
	}
}
