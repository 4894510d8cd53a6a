package app_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/identity"
)

// TestOfficerWorksTheInboxThroughTheAPI: a demo service with a review runs
// end to end over HTTP, and every task route answers the wrong caller as it
// should: anonymous 401, a citizen 403, an officer of another agency or
// role sees nothing.
func TestOfficerWorksTheInboxThroughTheAPI(t *testing.T) {
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
	officer := token(identity.Principal{Kind: identity.Officer, Subject: "gpo-0001", Agency: "gpo", Roles: []string{"special-records-officer"}})
	otherAgency := token(identity.Principal{Kind: identity.Officer, Subject: "mia-0001", Agency: "mia", Roles: []string{"migration-officer"}})
	applicant := token(identity.Principal{Kind: identity.Citizen, Subject: r.Sample.WithAddress.String()})
	stranger := token(identity.Principal{Kind: identity.Citizen, Subject: r.Sample.WithoutAddress.String()})
	base := r.Server.URL

	submit := func(key string) string {
		res := call(t, "POST", base+"/api/v1/applications",
			fmt.Sprintf(`{"service":"criminal-record-certificate","inputs":{"iin":%q,"purpose":"employment","name_changed":false}}`, r.Sample.WithAddress),
			append([]string{"Idempotency-Key", key}, applicant...)...)
		if res.status != http.StatusAccepted {
			t.Fatalf("submit: %d %s", res.status, res.raw)
		}
		return base + "/api/v1/applications/" + str(res.body["id"])
	}
	app := submit("review-1")
	if s := str(waitDecided(t, app, applicant...).body["status"]); s != "in_review" {
		t.Fatalf("status %s, want in_review", s)
	}

	for _, c := range []struct {
		name    string
		headers []string
		status  int
		code    string
		tasks   int
	}{
		{"anonymous", nil, 401, "auth.unauthorized", 0},
		{"citizen", applicant, 403, "auth.forbidden", 0},
		{"officer of another agency", otherAgency, 200, "", 0},
		{"officer with the role", officer, 200, "", 1},
	} {
		res := call(t, "GET", base+"/api/v1/tasks", "", c.headers...)
		tasks, _ := res.body["tasks"].([]any)
		if res.status != c.status || str(res.body["code"]) != c.code || len(tasks) != c.tasks {
			t.Errorf("inbox as %s: %d %s", c.name, res.status, res.raw)
		}
	}
	inbox := call(t, "GET", base+"/api/v1/tasks", "", officer...)
	task := inbox.body["tasks"].([]any)[0].(map[string]any)
	taskURL := base + "/api/v1/tasks/" + str(task["id"])

	for _, c := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
	}{
		{"anonymous reads", "GET", "", "", nil, 401},
		{"citizen reads", "GET", "", "", applicant, 403},
		{"other agency reads", "GET", "", "", otherAgency, 404},
		{"other agency claims", "POST", "/claim", "", otherAgency, 404},
		{"citizen decides", "POST", "/decision", `{"decision":"approve"}`, applicant, 403},
		{"decide unclaimed", "POST", "/decision", `{"decision":"approve"}`, officer, 409},
		{"unknown task", "GET", "x", "", officer, 404},
	} {
		if res := call(t, c.method, taskURL+c.path, c.body, c.headers...); res.status != c.status {
			t.Errorf("%s: %d %s", c.name, res.status, res.raw)
		}
	}

	// The officer sees what the registries hold: the person, and the
	// person's special records (a list; none for this person).
	detail := call(t, "GET", taskURL, "", officer...)
	data, _ := detail.body["data"].([]any)
	if detail.status != 200 || len(data) != 2 || str(data[0].(map[string]any)["registry"]) != "population" ||
		str(data[1].(map[string]any)["registry"]) != "criminal_records" {
		t.Fatalf("task detail: %d %s", detail.status, detail.raw)
	}
	if res := call(t, "POST", taskURL+"/claim", "", officer...); res.status != 200 || str(res.body["status"]) != "claimed" {
		t.Fatalf("claim: %d %s", res.status, res.raw)
	}
	if res := call(t, "POST", taskURL+"/decision", `{"decision":"refuse","refusal":"nope"}`, officer...); res.status != 422 {
		t.Fatalf("a refusal the step does not offer: %d %s", res.status, res.raw)
	}
	if res := call(t, "POST", taskURL+"/decision", `{"decision":"approve","comment":"no record found"}`, officer...); res.status != 200 || str(res.body["decision"]) != "approve" {
		t.Fatalf("decide: %d %s", res.status, res.raw)
	}
	if done := waitDecided(t, app, applicant...); str(done.body["status"]) != "completed" || str(done.body["document_id"]) == "" {
		t.Fatalf("not completed after the approval: %s", done.raw)
	}

	// Citizens' actions: only the applicant withdraws.
	second := submit("review-2")
	waitDecided(t, second, applicant...)
	for _, c := range []struct {
		name    string
		headers []string
		status  int
	}{
		{"anonymous", nil, 401},
		{"another citizen", stranger, 404},
		{"an officer", officer, 403},
		{"the applicant", applicant, 200},
		{"the applicant again", applicant, 409},
	} {
		if res := call(t, "POST", second+"/withdraw", "", c.headers...); res.status != c.status {
			t.Errorf("withdraw as %s: %d %s", c.name, res.status, res.raw)
		}
	}
	if res := call(t, "POST", second+"/correction", `{"inputs":{}}`, applicant...); res.status != 409 {
		t.Errorf("correcting a withdrawn application: %d %s", res.status, res.raw)
	}
}
