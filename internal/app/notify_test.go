package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/identity"
)

// TestNotificationsEndToEnd: a citizen leaves a phone, applies for a
// service that asks for a signature or a fee; the running platform's
// notifier texts the citizen (the development SMS adapter), `ortaq notify
// outbox` shows the SMS, and the citizen's inbox has the message.
func TestNotificationsEndToEnd(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 1, 50)
	ctx := context.Background()
	iin := r.Sample.WithAddress.String()
	tok, _, err := r.Tokens.Issue(ctx, identity.Principal{Kind: identity.Citizen, Subject: iin}, time.Hour, "test")
	if err != nil {
		t.Fatal(err)
	}
	auth := []string{"Authorization", "Bearer " + tok}
	base := r.Server.URL
	if res := call(t, "PUT", base+"/api/v1/notifications/contact", `{"phone":"+77015550101","language":"ru"}`, auth...); res.status != http.StatusOK {
		t.Fatalf("set contact: %d %s", res.status, res.raw)
	}
	res := call(t, "POST", base+"/api/v1/applications",
		fmt.Sprintf(`{"service":"lost-identity-document","inputs":{"iin":%q,"document_type":"id_card","reason":"lost","loss_date":"2026-11-20","pickup_kato":"751110000"}}`, iin),
		append([]string{"Idempotency-Key", "notify-1"}, auth...)...)
	if res.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", res.status, res.raw)
	}

	var out, errOut string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var code int
		code, out, errOut = ortaq(t, r, "notify", "outbox", "--to", "+77015550101")
		if code != 0 {
			t.Fatalf("ortaq notify outbox exited %d: %s", code, errOut)
		}
		if strings.Contains(out, "sms") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(out, "+77015550101") || !strings.Contains(out, "[ru]") || !strings.Contains(errOut, "GET /api/v1/notifications") {
		t.Fatalf("ortaq notify outbox printed\n%s\n%s\nwant an SMS in Russian to the phone, and where to look next", out, errOut)
	}
	inbox := call(t, "GET", base+"/api/v1/notifications?lang=ru", "", auth...)
	list, _ := inbox.body["notifications"].([]any)
	if inbox.status != http.StatusOK || len(list) == 0 {
		t.Fatalf("inbox: %d %s", inbox.status, inbox.raw)
	}
	if topic := str(list[len(list)-1].(map[string]any)["topic"]); topic != "process.signature.requested" && topic != "process.payment.requested" {
		t.Errorf("first message is about %s", topic)
	}
	if res := call(t, "GET", base+"/api/v1/notifications", ""); res.status != http.StatusUnauthorized {
		t.Errorf("anonymous inbox: %d", res.status)
	}
	officer, _, err := r.Tokens.Issue(ctx, identity.Principal{Kind: identity.Officer, Subject: "mia-0001", Agency: "mia",
		Roles: []string{"migration-officer"}}, time.Hour, "test")
	if err != nil {
		t.Fatal(err)
	}
	// The officer reads their roles' inbox, which holds none of the
	// citizen's messages.
	if res := call(t, "GET", base+"/api/v1/notifications", "", "Authorization", "Bearer "+officer); res.status != http.StatusOK ||
		strings.Contains(res.raw, "application") {
		t.Errorf("officer's inbox: %d %s", res.status, res.raw)
	}
}
