package consent_test

import (
	"strings"
	"testing"
	"time"
)

// TestAPI: the consent API end to end for each kind of caller.
func TestAPI(t *testing.T) {
	f := setup(t)
	ts := f.server(t)
	base := ts.URL + "/api/v1/consents"
	subject := person(t, 30)
	me, other := "citizen:"+subject, "citizen:"+person(t, 31)
	ask := `{"subject_iin":"` + subject + `","items":["population.last_name"],"purpose":"loan application","valid_until":"` +
		start.AddDate(0, 1, 0).Format(time.RFC3339) + `","exchange_client":"KZ/COM/123456789012/loans"}`

	if r := do(t, "POST", base, "", ask); r.status != 401 {
		t.Errorf("anonymous asks: %d", r.status)
	}
	if r := do(t, "POST", base, me, ask); r.status != 403 {
		t.Errorf("a citizen asks: %d", r.status)
	}
	r := do(t, "POST", base, bankWho, ask)
	if r.status != 201 || r.body["status"] != "pending" {
		t.Fatalf("bank asks: %d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	if strings.Contains(r.raw, "code_hash") {
		t.Errorf("the answer shows the code's hash: %s", r.raw)
	}
	if r := do(t, "GET", base+"/"+id, other, ""); r.status != 404 {
		t.Errorf("another citizen reads: %d", r.status)
	}
	if r := do(t, "GET", base+"/not-a-uuid", me, ""); r.status != 404 {
		t.Errorf("bad id: %d", r.status)
	}
	if r := do(t, "POST", base+"/"+id+"/approve", bankWho, `{"code":"12345x"}`); r.status != 422 || !strings.Contains(r.raw, "otp.invalid") {
		t.Errorf("bad code: %d %s", r.status, r.raw)
	}
	if r := do(t, "POST", base+"/"+id+"/approve", bankWho, ""); r.status != 422 || !strings.Contains(r.raw, `"/code"`) {
		t.Errorf("no code: %d %s", r.status, r.raw)
	}
	if r := do(t, "POST", base+"/"+id+"/code", bankWho, ""); r.status != 200 {
		t.Errorf("new code: %d %s", r.status, r.raw)
	}
	r = do(t, "POST", base+"/"+id+"/approve", me, "")
	if r.status != 200 || r.body["status"] != "granted" || len(r.body["receipts"].([]any)) != 1 {
		t.Fatalf("the person approves: %d %s", r.status, r.raw)
	}
	jws := r.body["receipts"].([]any)[0].(map[string]any)["jws"].(string)
	if r := do(t, "POST", base+"/receipts/verify", "", `{"jws":"`+jws+`"}`); r.status != 200 || r.body["valid"] != true || r.body["status"] != "granted" {
		t.Errorf("verify: %d %s", r.status, r.raw)
	}
	if r := do(t, "POST", base+"/receipts/verify", "", `{"jws":""}`); r.status != 422 {
		t.Errorf("verify nothing: %d", r.status)
	}
	if r := do(t, "GET", base+"/keys", "", ""); r.status != 200 || len(r.body["keys"].([]any)) != 1 {
		t.Errorf("keys: %d %s", r.status, r.raw)
	}
	if r := do(t, "GET", base+"?subject_iin="+subject, bankWho, ""); r.status != 200 || !strings.Contains(r.raw, id) {
		t.Errorf("bank's list: %d %s", r.status, r.raw)
	}
	if r := do(t, "GET", base, other, ""); r.status != 200 || strings.Contains(r.raw, id) {
		t.Errorf("another citizen's list: %d %s", r.status, r.raw)
	}

	// The exchange gateway's check: a system with the gateway scope asks
	// for the exchange's client; any other system may not.
	const gatewayWho = "system:gateway-100::exchange-gateway"
	check := func(who, consentID string) reply {
		return do(t, "POST", base+"/check", who, `{"subject_iin":"`+subject+`","requester":"exchange:KZ/COM/123456789012/loans",
			"items":["population.last_name"],"purpose":"loan application","consent_id":"`+consentID+`"}`)
	}
	if r := check(me, id); r.status != 403 || r.body["code"] != "auth.forbidden" {
		t.Errorf("a citizen checks: %d %s", r.status, r.raw)
	}
	if r := check("system:gateway-100", id); r.status != 403 || r.body["code"] != "auth.forbidden" {
		t.Errorf("a system without the gateway scope checks for the exchange: %d %s", r.status, r.raw)
	}
	if r := check(gatewayWho, id); r.status != 200 || r.body["consent_id"] != id {
		t.Errorf("gateway checks: %d %s", r.status, r.raw)
	}
	if r := check(gatewayWho, "not-a-uuid"); r.status != 422 {
		t.Errorf("malformed consent id: %d %s", r.status, r.raw)
	}
	if r := do(t, "POST", base+"/check", gatewayWho, `{"subject_iin":"`+subject+`","requester":"system:halyk-loans","items":["population.last_name"],"purpose":"x"}`); r.status != 403 || r.body["code"] != "auth.forbidden" {
		t.Errorf("a system checks for another system: %d %s", r.status, r.raw)
	}
	if r := do(t, "POST", base+"/"+id+"/revoke", other, ""); r.status != 404 {
		t.Errorf("another citizen revokes: %d", r.status)
	}
	if r := do(t, "POST", base+"/"+id+"/revoke", bankWho, ""); r.status != 200 || r.body["status"] != "revoked" {
		t.Errorf("the requester withdraws: %d %s", r.status, r.raw)
	}
	if r := check(gatewayWho, id); r.status != 403 || r.body["code"] != "consent.revoked" {
		t.Errorf("gateway checks a revoked consent: %d %s", r.status, r.raw)
	}
	if r := do(t, "POST", base+"/"+id+"/refuse", me, ""); r.status != 409 {
		t.Errorf("refusing a revoked consent: %d", r.status)
	}
}
