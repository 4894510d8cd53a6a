package account_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/notify"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/portal/portaltest"
)

func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }

// certificate applies for the address certificate as the citizen through
// the API and waits for its document; it returns the document's id.
func certificate(t *testing.T, r *apptest.Running, iin string) string {
	t.Helper()
	me := identity.Principal{Kind: identity.Citizen, Subject: iin}
	status, out := portaltest.API(t, r, me, "POST", "/api/v1/applications", `{"service":"address-certificate","inputs":{"iin":"`+iin+`"}}`)
	if status != http.StatusAccepted {
		t.Fatalf("apply: %d %v", status, out)
	}
	id, _ := out["id"].(string)
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, app := portaltest.API(t, r, me, "GET", "/api/v1/applications/"+id, "")
		if doc, _ := app["document_id"].(string); doc != "" {
			return doc
		}
		if app["status"] == "refused" {
			t.Fatalf("refused: %v", app)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no document after 30 s: %v", app)
		}
		<-time.After(50 * time.Millisecond)
	}
}

var shareCode = regexp.MustCompile(`<strong id="share-code">([A-Z0-9-]+)</strong>`)

// TestMyDocumentsDownloadQRAndShare: the list, the page with its QR code
// and downloads, a share code that opens the document for someone else a
// few times and never another document, and what strangers get.
func TestMyDocumentsDownloadQRAndShare(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 2, 50)
	owner, other := r.Sample.WithAddress.String(), r.Sample.WithoutAddress.String()
	docID := certificate(t, r, owner)
	b := portaltest.New(t, r)

	// Anonymous: to sign in.
	if p := b.Get("/documents"); p.URL != "/login" {
		t.Errorf("anonymous /documents landed on %s", p.URL)
	}
	list := b.SignIn(owner, "/documents")
	if !strings.Contains(list.Body, `href="/documents/`+docID+`"`) || !strings.Contains(list.Body, `id="documents-table"`) ||
		!strings.Contains(list.Body, `href="/documents" aria-current="page"`) {
		t.Fatalf("my documents:\n%.3000s", list.Body)
	}
	doc := b.Get("/documents/" + docID)
	number := regexp.MustCompile(`<dd id="document-number">([^<]+)</dd>`).FindStringSubmatch(doc.Body)
	if doc.Status != 200 || number == nil || !strings.Contains(doc.Body, `<svg xmlns="http://www.w3.org/2000/svg" id="document-qr"`) ||
		strings.Contains(doc.Body, "style=") || !strings.Contains(doc.Body, `/verify/`+docID+`</a>`) {
		t.Fatalf("document page = %d:\n%.3000s", doc.Status, doc.Body)
	}
	res, err := b.Client.Get(b.Base + "/documents/" + docID + "/jws")
	if err != nil {
		t.Fatal(err)
	}
	jws, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Disposition") != `attachment; filename="`+number[1]+`.jws"` || strings.Count(string(jws), ".") != 2 {
		t.Errorf("JWS download: %d %v %.100s", res.StatusCode, res.Header, jws)
	}
	if v, _ := r.Documents.Verify(context.Background(), string(jws)); !v.Valid || !v.Registered {
		t.Errorf("the downloaded JWS does not verify: %+v", v)
	}
	if res, _ := b.Client.Get(b.Base + "/documents/" + docID + "/json"); res.StatusCode != 200 ||
		!strings.HasSuffix(res.Header.Get("Content-Disposition"), `.json"`) || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("JSON download: %d %v", res.StatusCode, res.Header)
	}

	// The QR code's page: public, genuine, nothing personal.
	anon := b.Another()
	facts := anon.Get("/verify/" + docID)
	if facts.Status != 200 || !strings.Contains(facts.Body, `data-status="valid"`) || !strings.Contains(facts.Body, number[1]) ||
		strings.Contains(facts.Body, owner) || strings.Contains(facts.Body, "Тіркелген мекенжайы") {
		t.Errorf("public facts = %d:\n%.3000s", facts.Status, facts.Body)
	}
	for _, bad := range []string{"/verify/not-a-uuid", "/verify/0193a000-0000-7000-8000-000000000000"} {
		if p := anon.Get(bad); p.Status != 404 || !strings.Contains(p.Body, "<html") {
			t.Errorf("%s = %d", bad, p.Status)
		}
	}

	// A share code, shown once.
	shared := b.Post("/documents/"+docID+"/shares", portaltest.Form(t, doc))
	code := shareCode.FindStringSubmatch(shared.Body)
	if shared.Status != http.StatusCreated || code == nil || !strings.Contains(shared.Body, `id="shares-table"`) {
		t.Fatalf("share = %d:\n%.3000s", shared.Status, shared.Body)
	}
	if again := b.Get("/documents/" + docID); strings.Contains(again.Body, code[1]) {
		t.Error("the share code is shown again")
	}
	// Another citizen: no document, no shares, no revocation.
	o := b.Another()
	o.SignIn(other, "/documents")
	if p := o.Get("/documents/" + docID); p.Status != 404 {
		t.Errorf("another citizen's view of my document = %d", p.Status)
	}
	if p := o.Get("/documents/" + docID + "/jws"); p.Status != 404 || strings.Contains(p.Body, ".ey") {
		t.Errorf("another citizen downloads my document = %d", p.Status)
	}
	of := portaltest.Form(t, o.Get("/documents"))
	if p := o.Post("/documents/"+docID+"/shares", of); p.Status != 404 {
		t.Errorf("another citizen shares my document = %d", p.Status)
	}
	if p := o.Get("/documents"); strings.Contains(p.Body, docID) {
		t.Error("another citizen's list shows my document")
	}
	if p := o.Get("/documents/not-a-uuid"); p.Status != 404 {
		t.Errorf("malformed id = %d", p.Status)
	}

	// The recipient opens it with number and code; not another document.
	form := portaltest.Form(t, anon.Get("/verify"))
	form.Set("document", number[1])
	form.Set("code", strings.ToLower(code[1]))
	if p := anon.Post("/verify/share", form); p.Status != 200 || !strings.Contains(p.Body, `id="shared-document"`) ||
		!strings.Contains(p.Body, "Тіркелген мекенжайы") {
		t.Fatalf("open with the code = %d:\n%.3000s", p.Status, p.Body)
	}
	otherDoc := certificate(t, r, owner) // the same holder's second certificate
	form.Set("document", otherDoc)
	if p := anon.Post("/verify/share", form); p.Status != 422 || !strings.Contains(p.Body, `id="share-code-error"`) ||
		!strings.Contains(p.Body, `aria-invalid="true"`) || strings.Contains(p.Body, `id="shared-document"`) {
		t.Errorf("the code on another document = %d:\n%.2000s", p.Status, p.Body)
	}
	form.Set("document", "garbage <script>")
	if p := anon.Post("/verify/share", form); p.Status != 422 {
		t.Errorf("malformed number = %d", p.Status)
	}
	form.Set("document", docID)
	form.Set("code", strings.Repeat("Z", 5000))
	if p := anon.Post("/verify/share", form); p.Status != 422 {
		t.Errorf("huge code = %d", p.Status)
	}
	// The use shows on the owner's page and in the access log.
	page := b.Get("/documents/" + docID)
	if !strings.Contains(page.Body, "1 / 5") {
		t.Errorf("the owner does not see the use:\n%.3000s", page.Body)
	}
	if log := b.Get("/my-data"); !strings.Contains(log.Body, `data-action="document.shared_read"`) || !strings.Contains(log.Body, `data-action="document.share_refused"`) {
		t.Errorf("the access log lacks the share's use or the wrong try:\n%.3000s", log.Body)
	}
	// Revoked: the code no longer opens it.
	shareID := regexp.MustCompile(`action="/documents/` + docID + `/shares/([0-9a-f-]+)/revoke"`).FindStringSubmatch(page.Body)
	if shareID == nil {
		t.Fatalf("no revoke form:\n%.3000s", page.Body)
	}
	if p := o.Post("/documents/"+docID+"/shares/"+shareID[1]+"/revoke", of); p.Status != 404 {
		t.Errorf("another citizen revokes my share = %d", p.Status)
	}
	if p := b.Post("/documents/"+docID+"/shares/"+shareID[1]+"/revoke", portaltest.Form(t, page)); p.Status != 200 || p.URL != "/documents/"+docID {
		t.Errorf("revoke = %d %s", p.Status, p.URL)
	}
	form.Set("code", code[1])
	if p := anon.Post("/verify/share", form); p.Status != 422 {
		t.Errorf("a revoked code = %d", p.Status)
	}
	// Too many wrong codes lock the document's sharing.
	var last portaltest.Page
	for range document.ShareMaxFailures {
		form.Set("code", "AAAAA-AAAAA")
		last = anon.Post("/verify/share", form)
	}
	if last.Status != http.StatusTooManyRequests {
		t.Errorf("after %d wrong codes = %d; want 429", document.ShareMaxFailures, last.Status)
	}
	// An officer has no citizen's pages; the inbox is the officer's own
	// (their roles' messages), empty here.
	off := b.Another()
	off.SignInOfficer("mdai-1", "mdai", []string{"platform-administrator"}, "/")
	for _, path := range []string{"/documents", "/consents", "/my-data"} {
		if p := off.Get(path); p.Status != 403 {
			t.Errorf("officer on %s = %d", path, p.Status)
		}
	}
	if p := off.Get("/notifications"); p.Status != 200 || !strings.Contains(p.Body, `id="notifications-empty"`) {
		t.Errorf("officer's inbox = %d", p.Status)
	}
}

// TestVerifyByJWS keeps the pasted-text check of the core portal.
func TestVerifyByJWS(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 2, 50)
	owner := r.Sample.WithAddress.String()
	docID := certificate(t, r, owner)
	b := portaltest.New(t, r)
	b.SignIn(owner, "/documents")
	jws := regexp.MustCompile(`(?s)<textarea id="jws" readonly rows="6">(.*?)</textarea>`).FindStringSubmatch(b.Get("/documents/" + docID).Body)
	if jws == nil {
		t.Fatal("no JWS on the document page")
	}
	anon := b.Another()
	vf := portaltest.Form(t, anon.Get("/verify"))
	vf.Set("jws", html.UnescapeString(jws[1]))
	if v := anon.Post("/verify", vf); !strings.Contains(v.Body, "status-completed") {
		t.Errorf("the genuine document failed:\n%.2000s", v.Body)
	}
	vf.Set("jws", strings.Replace(html.UnescapeString(jws[1]), ".ey", ".ez", 1))
	if v := anon.Post("/verify", vf); !strings.Contains(v.Body, "status-refused") {
		t.Errorf("a tampered document verified:\n%.2000s", v.Body)
	}
	vf.Set("jws", strings.Repeat("x", 300<<10))
	if v := anon.Post("/verify", vf); v.Status >= 500 {
		t.Errorf("huge input = %d", v.Status)
	}
}

// TestConsentByCodeAndAccessLog: a bank asks for consent; the citizen
// approves on /consents with the code from the SMS (a wrong code is named
// next to the field); the bank reads; /my-data shows the read; the
// citizen revokes, and another citizen can do none of it.
func TestConsentByCodeAndAccessLog(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 0, 10)
	ctx := context.Background()
	if err := r.InstallRegistries(ctx); err != nil {
		t.Fatal(err)
	}
	person, other := r.Sample.WithAddress.String(), r.Sample.WithoutAddress.String()
	b := portaltest.New(t, r)
	phone := b.Citizen(person)
	if _, err := r.Notify.SetContact(ctx, person, notify.Contact{Phone: phone, Language: "kk"}, "citizen:"+person, ""); err != nil {
		t.Fatal(err)
	}
	bank := identity.Principal{Kind: identity.System, Subject: "halyk-loans"}
	status, out := portaltest.API(t, r, bank, "POST", "/api/v1/consents", `{"subject_iin":"`+person+`","items":["population.last_name"],
		"purpose":"loan application","valid_until":"`+time.Now().AddDate(0, 1, 0).UTC().Format(time.RFC3339)+`","requester_name":"Halyk Bank"}`)
	if status != 201 {
		t.Fatalf("ask: %d %v", status, out)
	}
	id, _ := out["id"].(string)
	var code string
	for deadline := time.Now().Add(20 * time.Second); code == ""; {
		if _, err := r.Notify.Consume(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Notify.SendDue(ctx); err != nil {
			t.Fatal(err)
		}
		sms, err := notify.DevOutbox(ctx, r.DB.Pool, notify.OutboxFilter{To: phone, Channel: notify.SMS, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sms {
			if strings.Contains(m.Body, "Halyk Bank") {
				code = regexp.MustCompile(`\b[0-9]{6}\b`).FindString(m.Body)
			}
		}
		if code == "" {
			if time.Now().After(deadline) {
				t.Fatal("no SMS with the consent code within 20 s")
			}
			<-time.After(20 * time.Millisecond)
		}
	}

	page := b.SignIn(person, "/consents")
	if !strings.Contains(page.Body, `id="consent-`+id+`"`) || !strings.Contains(page.Body, `action="/consents/`+id+`/approve"`) ||
		!strings.Contains(page.Body, `data-status="pending"`) {
		t.Fatalf("consents page:\n%.3000s", page.Body)
	}
	// Another citizen cannot approve, refuse or revoke it.
	o := b.Another()
	op := o.SignIn(other, "/consents")
	if strings.Contains(op.Body, id) {
		t.Error("another citizen sees my consent")
	}
	of := portaltest.Form(t, op)
	of.Set("code", code)
	for _, action := range []string{"approve", "refuse", "revoke"} {
		if p := o.Post("/consents/"+id+"/"+action, of); p.Status != 404 {
			t.Errorf("another citizen's %s = %d", action, p.Status)
		}
	}
	// A wrong code, then a malformed id.
	form := portaltest.Form(t, page)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	form.Set("code", wrong)
	p := b.Post("/consents/"+id+"/approve", form)
	if p.Status != 422 || !strings.Contains(p.Body, `id="code-`+id+`-error"`) || !strings.Contains(p.Body, `aria-invalid="true"`) {
		t.Errorf("wrong code = %d:\n%.3000s", p.Status, p.Body)
	}
	if p := b.Post("/consents/not-a-uuid/approve", form); p.Status != 404 {
		t.Errorf("malformed id = %d", p.Status)
	}
	form.Set("code", code)
	p = b.Post("/consents/"+id+"/approve", form)
	if p.Status != 200 || p.URL != "/consents" || !strings.Contains(p.Body, `data-status="granted"`) || !strings.Contains(p.Body, `class="receipt"`) {
		t.Fatalf("approve = %d %s:\n%.3000s", p.Status, p.URL, p.Body)
	}

	// The bank reads with the consent; the read is in the access log.
	if status, out := portaltest.API(t, r, bank, "GET", "/api/v1/registries/population/records/"+person+"?purpose=loan+application&fields=last_name", ""); status != 200 {
		t.Fatalf("bank read: %d %v", status, out)
	}
	log := b.Get("/my-data")
	if log.Status != 200 || !strings.Contains(log.Body, `id="access-log"`) || !strings.Contains(log.Body, "system:halyk-loans") ||
		!strings.Contains(log.Body, `data-action="registry.population.read"`) || !strings.Contains(log.Body, `data-action="consent.used"`) {
		t.Errorf("access log:\n%.4000s", log.Body)
	}
	if p := b.Get("/my-data?limit=abc"); p.Status != 422 {
		t.Errorf("bad limit = %d", p.Status)
	}

	// Revoked: the bank is refused, and the refusal is in the log.
	p = b.Post("/consents/"+id+"/revoke", portaltest.Form(t, b.Get("/consents")))
	if p.Status != 200 || !strings.Contains(p.Body, `data-status="revoked"`) {
		t.Errorf("revoke = %d:\n%.2000s", p.Status, p.Body)
	}
	if status, _ := portaltest.API(t, r, bank, "GET", "/api/v1/registries/population/records/"+person+"?purpose=loan+application&fields=last_name", ""); status != 403 {
		t.Errorf("read after revocation = %d", status)
	}
	if log := b.Get("/my-data"); !strings.Contains(log.Body, "access-denied") {
		t.Errorf("the refused read is not in the log")
	}
	if p := b.Post("/consents/"+id+"/revoke", portaltest.Form(t, b.Get("/consents"))); p.Status != 409 {
		t.Errorf("revoking twice = %d", p.Status)
	}

	// Notifications: the inbox, paged; a bad cursor is a clear error.
	if p := b.Get("/notifications"); p.Status != 200 || !strings.Contains(p.Body, "<h1>") {
		t.Errorf("notifications = %d", p.Status)
	}
	for _, bad := range []string{"not-a-uuid", "0193a000-0000-7000-8000-000000000000"} {
		if p := b.Get("/notifications?after=" + url.QueryEscape(bad)); p.Status != 422 {
			t.Errorf("after=%s = %d", bad, p.Status)
		}
	}
}
