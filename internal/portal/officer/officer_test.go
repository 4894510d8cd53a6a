package officer_test

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/portal/portaltest"
	"github.com/ortaq/ortaq/internal/process"
)

func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }

var gpo = []string{"special-records-officer"}

// inReview submits a criminal-record certificate application of the
// sample citizen and waits until it waits for the gpo officer's review.
func inReview(t *testing.T, r *apptest.Running, key string) process.Application {
	t.Helper()
	ctx := context.Background()
	a, _, err := r.Engine.Submit(ctx, process.SubmitRequest{ServiceID: "criminal-record-certificate", IdempotencyKey: key,
		Inputs: map[string]any{"iin": r.Sample.WithAddress.String(), "purpose": "employment", "name_changed": false}})
	if err != nil {
		t.Fatal(err)
	}
	return waitStatus(t, r, a, "in_review")
}

func waitStatus(t *testing.T, r *apptest.Running, a process.Application, status string) process.Application {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := r.Engine.Get(context.Background(), a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == status {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("application %s is %s after 30s; want %s", a.ID, got.Status, status)
		}
		<-time.After(50 * time.Millisecond)
	}
}

var taskLink = regexp.MustCompile(`href="(/officer/tasks/[0-9a-f-]{36})"`)

// multipartPost posts a decision form as the browser does (multipart).
func multipartPost(t *testing.T, b *portaltest.Browser, path string, fields url.Values, file string, content []byte) portaltest.Page {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, vs := range fields {
		for _, v := range vs {
			_ = w.WriteField(k, v)
		}
	}
	fw, _ := w.CreateFormFile("attachments", file)
	_, _ = fw.Write(content)
	_ = w.Close()
	res, err := b.Client.Post(b.Base+path, w.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(res.Body)
	return portaltest.Page{Status: res.StatusCode, URL: res.Request.URL.Path, Body: out.String()}
}

// TestOfficerApprovesFromTheInbox: the gpo officer finds the task in the
// inbox, sees the application with its registry data and legal basis,
// claims it, is refused a return without a reason (next to the field),
// approves with a comment and a file, and the application completes; every
// step is audited.
func TestOfficerApprovesFromTheInbox(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 2, 100)
	a := inReview(t, r, "officer-page-approve-0000000001")
	b := portaltest.New(t, r)
	inbox := b.SignInOfficer("gpo-page-1", "gpo", gpo, "/officer")
	if !strings.Contains(inbox.Body, a.Number) || !strings.Contains(inbox.Body, `href="/officer"`) {
		t.Fatalf("the inbox does not list application %s or has no menu item:\n%.3000s", a.Number, inbox.Body)
	}
	link := taskLink.FindStringSubmatch(inbox.Body)
	if link == nil {
		t.Fatal("no task link in the inbox")
	}
	taskPath := link[1]
	// Filters: by this service, by overdue (none is), by a role not mine.
	if p := b.Get("/officer?service=criminal-record-certificate&status=open"); !strings.Contains(p.Body, a.Number) {
		t.Errorf("filtered by service: the task is missing")
	}
	if p := b.Get("/officer?overdue=on"); strings.Contains(p.Body, a.Number) {
		t.Errorf("overdue filter lists a task due in three days")
	}
	if p := b.Get("/officer?role=migration-officer"); p.Status != 422 || !strings.Contains(p.Body, `id="filter-role-error"`) {
		t.Errorf("a role the officer lacks = %d; want 422 with the error next to the field", p.Status)
	}
	if p := b.Get("/officer?after=nope"); p.Status != 422 {
		t.Errorf("a malformed page cursor = %d; want 422", p.Status)
	}

	task := b.Get(taskPath)
	for _, want := range []string{a.Number, `action="` + taskPath + `/claim"`, "population", r.Sample.WithAddress.String()} {
		if !strings.Contains(task.Body, want) {
			t.Errorf("the task page lacks %q", want)
		}
	}
	if strings.Contains(task.Body, `id="approve-form"`) {
		t.Errorf("decision forms shown before claiming")
	}
	// Deciding before claiming: the engine's message over the page.
	form := portaltest.Form(t, task)
	form.Set("decision", "approve")
	if p := b.Post(taskPath+"/decision", form); p.Status != 409 || !strings.Contains(p.Body, `id="action-error"`) {
		t.Errorf("deciding an unclaimed task = %d; want 409 with the message:\n%.2000s", p.Status, p.Body)
	}
	claimed := b.Post(taskPath+"/claim", portaltest.Form(t, task))
	if claimed.URL != taskPath || !strings.Contains(claimed.Body, `id="approve-form"`) || !strings.Contains(claimed.Body, `id="return-form"`) {
		t.Fatalf("after claiming: %s %d:\n%.3000s", claimed.URL, claimed.Status, claimed.Body)
	}

	// A return without a reason is refused next to the reason's field.
	form = portaltest.Form(t, claimed)
	form.Set("decision", "return")
	form.Set("comment", "  ")
	p := b.Post(taskPath+"/decision", form)
	if p.Status != 422 || !strings.Contains(p.Body, `id="return-comment-error"`) || !strings.Contains(p.Body, `aria-invalid="true"`) {
		t.Fatalf("return without reason = %d:\n%.3000s", p.Status, p.Body)
	}
	// A file that is not PDF, JPEG or PNG is refused next to the file input.
	fields := portaltest.Form(t, p)
	fields.Set("decision", "approve")
	if p := multipartPost(t, b, taskPath+"/decision", fields, "notes.txt", []byte("plain text")); p.Status != 422 || !strings.Contains(p.Body, `id="approve-attachments-error"`) {
		t.Errorf("a text attachment = %d; want 422 next to the file input", p.Status)
	}
	// Approve with a comment and a PDF.
	fields.Set("comment", "Checked: no records.")
	done := multipartPost(t, b, taskPath+"/decision", fields, "check.pdf", []byte("%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"))
	if done.Status != 200 || done.URL != taskPath || !strings.Contains(done.Body, `id="task-decision"`) {
		t.Fatalf("approve = %d %s:\n%.3000s", done.Status, done.URL, done.Body)
	}
	waitStatus(t, r, a, "completed")
	att := regexp.MustCompile(`href="(` + regexp.QuoteMeta(taskPath) + `/attachments/[0-9a-f-]{36})"`).FindStringSubmatch(done.Body)
	if att == nil {
		t.Fatalf("no attachment link on the decided task:\n%.3000s", done.Body)
	}
	res, err := b.Client.Get(b.Base + att[1])
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/pdf" {
		t.Errorf("attachment download = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	// The decided task has left the inbox.
	if p := b.Get("/officer"); strings.Contains(p.Body, a.Number) {
		t.Errorf("the decided task is still in the inbox")
	}
	// Every step is audited as the officer's.
	for _, action := range []string{"process.application.read", "process.task.claim", "process.task.decide", "process.attachment.read"} {
		var n int
		if err := r.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_event WHERE action = $1 AND actor = 'officer:gpo-page-1'
			AND object = $2`, action, "application:"+a.ID.String()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("no %s audit event", action)
		}
	}
}

// TestOfficerPagesRefuseOthers: an officer of another agency neither sees
// the task nor reaches it (404); a citizen is forbidden; anonymous visitors
// are sent to sign in; bad ids are 404.
func TestOfficerPagesRefuseOthers(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 2, 100)
	inReview(t, r, "officer-page-others-00000000001")
	owner := portaltest.New(t, r)
	inbox := owner.SignInOfficer("gpo-page-2", "gpo", gpo, "/officer")
	taskPath := taskLink.FindStringSubmatch(inbox.Body)[1]

	other := owner.Another()
	otherInbox := other.SignInOfficer("mia-page-2", "mia", []string{"migration-officer"}, "/officer")
	if taskLink.MatchString(otherInbox.Body) {
		t.Errorf("an officer of another agency sees the task in the inbox")
	}
	if p := other.Get(taskPath); p.Status != 404 {
		t.Errorf("another agency's officer on the task = %d; want 404", p.Status)
	}
	if p := other.Post(taskPath+"/claim", portaltest.Form(t, otherInbox)); p.Status != 404 {
		t.Errorf("another agency's officer claims = %d; want 404", p.Status)
	}
	if p := other.Get(taskPath + "/attachments/0193a000-0000-7000-8000-000000000000"); p.Status != 404 {
		t.Errorf("another agency's officer downloads = %d; want 404", p.Status)
	}
	for _, path := range []string{"/officer/tasks/nope", "/officer/tasks/0193a000-0000-7000-8000-000000000000", taskPath + "/attachments/nope"} {
		if p := owner.Get(path); p.Status != 404 {
			t.Errorf("GET %s = %d; want 404", path, p.Status)
		}
	}

	citizen := owner.Another()
	citizen.SignIn(r.Sample.WithAddress.String(), "/")
	if p := citizen.Get("/officer"); p.Status != 403 {
		t.Errorf("a citizen on /officer = %d; want 403", p.Status)
	}
	if p := citizen.Get(taskPath); p.Status != 403 {
		t.Errorf("a citizen on the task = %d; want 403", p.Status)
	}
	anon := owner.Another()
	anon.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := anon.Client.Get(anon.Base + "/officer")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 303 || !strings.HasPrefix(res.Header.Get("Location"), "/login?next=%2Fofficer") {
		t.Errorf("anonymous /officer = %d %s; want 303 to /login", res.StatusCode, res.Header.Get("Location"))
	}
}
