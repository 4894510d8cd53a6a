package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/agency"
	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/web"
)

func TestMain(m *testing.M) { pgtest.Main(m, agency.Schema(), identity.Schema(), audit.Schema()) }

const citizenIIN = "900101300017"

var officer = identity.Principal{Kind: identity.Officer, Subject: "mia-0001", Name: "Aigerim Sadykova", Agency: "mia", Roles: []string{"registry-officer"}}

// setup returns a fresh database with the agency "mia" and tokens on a fake clock.
func setup(t *testing.T) (*identity.Tokens, *clock.Fake, pgtest.DB) {
	t.Helper()
	db := pgtest.New(t)
	bin, err := iin.NewBIN(time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC), '4', '0', 90001)
	if err != nil {
		t.Fatal(err)
	}
	a := agency.Agency{ID: "mia", BIN: bin, Name: i18n.Text{KK: "ІІМ", RU: "МВД", EN: "MIA"}, Roles: []string{"migration-officer", "registry-officer"}}
	if err := agency.NewStore(db.Pool).Save(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	return identity.NewTokens(db.Pool, clk), clk, db
}

func TestIssueResolveExpire(t *testing.T) {
	tokens, clk, db := setup(t)
	ctx := context.Background()
	token, id, err := tokens.Issue(ctx, officer, time.Hour, "inbox pilot")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "oq_") || len(token) != 3+43 || id == "" {
		t.Fatalf("token %d chars, id %q; want oq_ and 43 base64url characters", len(token), id)
	}
	p, ok, err := tokens.Resolve(ctx, token)
	if err != nil || !ok {
		t.Fatalf("Resolve = %v, %v", ok, err)
	}
	if p.Actor() != "officer:mia-0001" || p.Name != officer.Name || !p.HasRole("mia", "registry-officer") || p.HasRole("mia", "migration-officer") || p.HasRole("moj", "registry-officer") {
		t.Errorf("resolved %+v", p)
	}

	// Only the SHA-256 is stored; the token is nowhere in the table.
	var hashed, leaked int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE hash = sha256(convert_to($1, 'UTF8'))),
		count(*) FILTER (WHERE access_token::text LIKE '%' || substr($1, 4) || '%') FROM access_token`, token).Scan(&hashed, &leaked); err != nil {
		t.Fatal(err)
	}
	if hashed != 1 || leaked != 0 {
		t.Errorf("rows with the token's hash %d (want 1), rows holding the token %d (want 0)", hashed, leaked)
	}

	// A second node (no cache) sees it too.
	other := identity.NewTokens(db.Pool, clk)
	if _, ok, _ := other.Resolve(ctx, token); !ok {
		t.Error("another node does not resolve the token")
	}

	clk.Advance(time.Hour)
	for name, ts := range map[string]*identity.Tokens{"cached": tokens, "uncached": identity.NewTokens(db.Pool, clk)} {
		if _, ok, err := ts.Resolve(ctx, token); ok || err != nil {
			t.Errorf("%s: expired token resolves: %v %v", name, ok, err)
		}
	}

	for _, bad := range []string{"", "oq_", "oq_short", token[:len(token)-1] + "!", "xx" + token[2:], strings.Replace(token, "oq_", "oq_A", 1)[:len(token)]} {
		if _, ok, err := tokens.Resolve(ctx, bad); ok || err != nil {
			t.Errorf("Resolve(%q) = %v, %v; want not ok, no error", bad, ok, err)
		}
	}
}

func TestCitizenAndSystem(t *testing.T) {
	tokens, _, _ := setup(t)
	ctx := context.Background()
	token, _, err := tokens.Issue(ctx, identity.Principal{Kind: identity.Citizen, Subject: " " + citizenIIN + " "}, 12*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	p, ok, err := tokens.Resolve(ctx, token)
	if err != nil || !ok || p.Actor() != "citizen:"+citizenIIN || !p.IsCitizen(citizenIIN) || p.IsCitizen("900101300025") || p.HasRole("", "") {
		t.Fatalf("citizen: %+v %v %v", p, ok, err)
	}
	token, _, err = tokens.Issue(ctx, identity.Principal{Kind: identity.System, Subject: "halyk-bank", Name: "Halyk Bank"}, identity.MaxTTL, "")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok, _ := tokens.Resolve(ctx, token); !ok || p.Actor() != "system:halyk-bank" || p.IsCitizen("") || p.HasScope(identity.ScopePayments) {
		t.Fatalf("system: %+v %v", p, ok)
	}
	token, _, err = tokens.Issue(ctx, identity.Principal{Kind: identity.System, Subject: "pay-gateway", Roles: []string{identity.ScopePayments, identity.ScopePayments}}, identity.MaxTTL, "")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok, _ := tokens.Resolve(ctx, token); !ok || !p.HasScope(identity.ScopePayments) || len(p.Roles) != 1 || p.HasRole("", identity.ScopePayments) {
		t.Fatalf("payment system: %+v %v", p, ok)
	}
}

func TestRevoke(t *testing.T) {
	tokens, clk, db := setup(t)
	ctx := context.Background()
	token, id, err := tokens.Issue(ctx, officer, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	other := identity.NewTokens(db.Pool, clk) // another node
	for _, ts := range []*identity.Tokens{tokens, other} {
		if _, ok, _ := ts.Resolve(ctx, token); !ok {
			t.Fatal("fresh token does not resolve")
		}
	}
	if err := tokens.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := tokens.Resolve(ctx, token); ok {
		t.Error("revoked token resolves on the node that revoked it")
	}
	// The other node answers from its cache for at most CacheTTL.
	if _, ok, _ := other.Resolve(ctx, token); !ok {
		t.Error("the other node dropped its cache early (fine, but the test expects the documented bound)")
	}
	clk.Advance(identity.CacheTTL)
	if _, ok, _ := other.Resolve(ctx, token); ok {
		t.Error("revoked token still resolves on another node after CacheTTL")
	}
	if err := tokens.Revoke(ctx, id); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	for _, unknown := range []string{"0190b2a4-0000-7000-8000-000000000000", "not-a-uuid"} {
		if err := tokens.Revoke(ctx, unknown); !errors.Is(err, identity.ErrNotFound) {
			t.Errorf("Revoke(%q) = %v; want ErrNotFound", unknown, err)
		}
	}
}

func TestIssueRefusesWhatCannotHaveAToken(t *testing.T) {
	tokens, _, _ := setup(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		p    identity.Principal
		ttl  time.Duration
		note string
		want string
	}{
		{"unknown agency", identity.Principal{Kind: identity.Officer, Subject: "x-1", Agency: "nope", Roles: []string{"registry-officer"}}, time.Hour, "", `agency "nope" does not exist`},
		{"role of no agency", identity.Principal{Kind: identity.Officer, Subject: "mia-1", Agency: "mia", Roles: []string{"registry-officer", "judge"}}, time.Hour, "", `has no role "judge"`},
		{"officer without roles", identity.Principal{Kind: identity.Officer, Subject: "mia-1", Agency: "mia"}, time.Hour, "", "at least one role"},
		{"officer without agency", identity.Principal{Kind: identity.Officer, Subject: "mia-1", Roles: []string{"registry-officer"}}, time.Hour, "", "agency"},
		{"bad checksum", identity.Principal{Kind: identity.Citizen, Subject: "900101300018"}, time.Hour, "", "iin.checksum"},
		{"not an IIN", identity.Principal{Kind: identity.Citizen, Subject: "mia-0001"}, time.Hour, "", "valid IIN"},
		{"citizen with agency", identity.Principal{Kind: identity.Citizen, Subject: citizenIIN, Agency: "mia"}, time.Hour, "", "only officers"},
		{"system with an unknown scope", identity.Principal{Kind: identity.System, Subject: "bank", Roles: []string{"x"}}, time.Hour, "", "is not one of payments"},
		{"system with an agency", identity.Principal{Kind: identity.System, Subject: "bank", Agency: "mia"}, time.Hour, "", "only officers have an agency"},
		{"citizen with roles", identity.Principal{Kind: identity.Citizen, Subject: citizenIIN, Roles: []string{"payments"}}, time.Hour, "", "only officers and systems"},
		{"bad id", identity.Principal{Kind: identity.System, Subject: "bank client"}, time.Hour, "", "letters, digits"},
		{"no kind", identity.Principal{Subject: "x"}, time.Hour, "", "kind"},
		{"too short", officer, 59 * time.Second, "", "lifetime"},
		{"too long", officer, identity.MaxTTL + time.Second, "", "lifetime"},
		{"control in name", identity.Principal{Kind: identity.System, Subject: "bank", Name: "a\nb"}, time.Hour, "", "control"},
		{"long note", officer, time.Hour, strings.Repeat("n", 501), "note"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tokens.Issue(ctx, tt.p, tt.ttl, tt.note)
			if !errors.Is(err, identity.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Issue = %v; want ErrInvalid mentioning %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "90010130001") {
				t.Errorf("the error repeats the IIN: %v", err)
			}
		})
	}
	if _, _, err := tokens.Issue(ctx, officer, identity.MinTTL, ""); err != nil {
		t.Errorf("the shortest lifetime: %v", err)
	}
}

// server is a web.Server with the middleware and a route that says who called.
func server(t *testing.T, tokens *identity.Tokens) (http.Handler, *strings.Builder) {
	t.Helper()
	var logs strings.Builder
	s := web.New(web.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	s.Use(tokens.Middleware)
	s.HandleFunc("GET /api/v1/whoami", func(w http.ResponseWriter, r *http.Request) error {
		actor := "anonymous"
		if p, ok := identity.FromContext(r.Context()); ok {
			actor = p.Actor()
		}
		web.WriteJSON(w, http.StatusOK, map[string]string{"actor": actor})
		return nil
	})
	s.HandleFunc("GET /api/v1/mine", func(w http.ResponseWriter, r *http.Request) error {
		p, err := identity.Require(r)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]string{"actor": p.Actor()})
		return nil
	})
	return s.Handler(), &logs
}

func get(h http.Handler, path, auth string) (int, http.Header, map[string]string) {
	req := httptest.NewRequest("GET", path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body map[string]string
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, rec.Header(), body
}

func TestMiddleware(t *testing.T) {
	tokens, _, _ := setup(t)
	token, id, err := tokens.Issue(context.Background(), officer, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	h, logs := server(t, tokens)
	for _, tt := range []struct {
		name, path, auth string
		status           int
		actor, code      string
	}{
		{"no header: anonymous", "/api/v1/whoami", "", 200, "anonymous", ""},
		{"valid token", "/api/v1/whoami", "Bearer " + token, 200, "officer:mia-0001", ""},
		{"scheme in lower case", "/api/v1/whoami", "bearer " + token, 200, "officer:mia-0001", ""},
		{"unknown oq_ token", "/api/v1/whoami", "Bearer oq_" + strings.Repeat("A", 43), 401, "", string(apierr.TokenInvalid)},
		{"malformed oq_ token", "/api/v1/whoami", "Bearer oq_garbage", 401, "", string(apierr.TokenInvalid)},
		{"admin token left alone", "/api/v1/whoami", "Bearer admin-secret", 200, "anonymous", ""},
		{"basic auth left alone", "/api/v1/whoami", "Basic b3E6b3E=", 200, "anonymous", ""},
		{"Require: anonymous", "/api/v1/mine", "", 401, "", string(apierr.Unauthorized)},
		{"Require: token", "/api/v1/mine", "Bearer " + token, 200, "officer:mia-0001", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := get(h, tt.path, tt.auth)
			if status != tt.status || body["actor"] != tt.actor || body["code"] != tt.code {
				t.Errorf("%s: %d %v; want %d actor %q code %q", tt.auth, status, body, tt.status, tt.actor, tt.code)
			}
			if tt.code == string(apierr.TokenInvalid) && (header.Get("WWW-Authenticate") == "" || body["request_id"] == "") {
				t.Errorf("401 without WWW-Authenticate or request id: %v %v", header, body)
			}
		})
	}
	if err := tokens.Revoke(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if status, _, body := get(h, "/api/v1/whoami", "Bearer "+token); status != 401 || body["code"] != string(apierr.TokenInvalid) {
		t.Errorf("revoked token: %d %v", status, body)
	}
	if strings.Contains(logs.String(), token[3:]) {
		t.Errorf("the token reached the logs:\n%s", logs.String())
	}
}

func TestDatabaseDownIsNotAnonymous(t *testing.T) {
	tokens, _, db := setup(t)
	token, _, err := tokens.Issue(context.Background(), officer, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	h, logs := server(t, identity.NewTokens(db.Pool, clock.Real{}))
	db.Pool.Close()
	status, _, body := get(h, "/api/v1/whoami", "Bearer "+token)
	if status != 503 || body["code"] != string(apierr.Unavailable) {
		t.Errorf("database down: %d %v; want 503 unavailable", status, body)
	}
	if strings.Contains(logs.String(), token[3:]) {
		t.Errorf("the token reached the logs:\n%s", logs.String())
	}
}

// TestSecretsNeverPrint: nothing that holds tokens or their digests shows
// them when printed or logged.
func TestSecretsNeverPrint(t *testing.T) {
	tokens, _, _ := setup(t)
	ctx := context.Background()
	token, _, err := tokens.Issue(ctx, identity.Principal{Kind: identity.Citizen, Subject: citizenIIN}, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	p, _, _ := tokens.Resolve(ctx, token) // now in the cache
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("test", "tokens", tokens, "principal", p)
	out := fmt.Sprint(tokens) + fmt.Sprintf("%+v %#v %v", tokens, tokens, tokens) + logs.String()
	if strings.Contains(out, token[3:]) || strings.Contains(out, citizenIIN) {
		t.Errorf("printed: %s", out)
	}
	if !strings.Contains(logs.String(), `"kind":"citizen"`) {
		t.Errorf("the principal's log value lost its kind: %s", logs.String())
	}
}

func TestContext(t *testing.T) {
	if _, ok := identity.FromContext(context.Background()); ok {
		t.Error("empty context has a principal")
	}
	p := officer
	p.Roles = []string{"registry-officer"}
	ctx := identity.WithPrincipal(context.Background(), p)
	p.Roles[0] = "changed"
	got, ok := identity.FromContext(ctx)
	if !ok || !got.HasRole("mia", "registry-officer") {
		t.Errorf("FromContext = %+v, %v", got, ok)
	}
	got.Roles[0] = "changed"
	if again, _ := identity.FromContext(ctx); !again.HasRole("mia", "registry-officer") {
		t.Error("a caller changed the principal in the context")
	}
}
