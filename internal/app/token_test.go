package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/cli"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/identity"
)

// TestTokenCommand: a token issued by `ortaq token issue` is accepted by the
// platform's API, an unknown one is refused on any route, and `ortaq token
// revoke` ends it.
func TestTokenCommand(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 1, 10)
	var out, errOut strings.Builder
	code := cli.Main([]string{"token", "issue", "--database-url", r.DB.URL, "--log-level", "warn",
		"--kind", "officer", "--subject", "mia-0001", "--name", "Aigerim", "--agency", "mia",
		"--role", "registry-officer", "--role", "migration-officer", "--ttl", "1h", "--note", "test"}, &out, &errOut)
	token := strings.TrimSpace(out.String())
	if code != 0 || !strings.HasPrefix(token, "oq_") || strings.Contains(token, "\n") {
		t.Fatalf("token issue exited %d\nstdout: %s\nstderr: %s", code, out.String(), errOut.String())
	}
	if strings.Contains(errOut.String(), token) || !strings.Contains(errOut.String(), "Authorization: Bearer") || !strings.Contains(errOut.String(), "valid until") {
		t.Errorf("stderr should explain the token without repeating it:\n%s", errOut.String())
	}
	_, id, _ := strings.Cut(errOut.String(), "ortaq token revoke ")
	id = strings.TrimSpace(id)

	if res := call(t, "GET", r.Server.URL+"/api/v1/services", "", "Authorization", "Bearer "+token); res.status != 200 {
		t.Errorf("with the token: %d %s", res.status, res.raw)
	}
	if res := call(t, "GET", r.Server.URL+"/api/v1/services", "", "Authorization", "Bearer oq_"+strings.Repeat("x", 43)); res.status != 401 || str(res.body["code"]) != "auth.token_invalid" {
		t.Errorf("with an unknown token: %d %s", res.status, res.raw)
	}
	p, ok, err := r.Tokens.Resolve(context.Background(), token)
	if err != nil || !ok || !p.HasRole("mia", "migration-officer") || p.Actor() != "officer:mia-0001" {
		t.Errorf("the platform resolves %+v %v %v", p, ok, err)
	}

	out.Reset()
	errOut.Reset()
	if code := cli.Main([]string{"token", "revoke", "--database-url", r.DB.URL, "--log-level", "warn", id}, &out, &errOut); code != 0 {
		t.Fatalf("token revoke %q exited %d: %s", id, code, errOut.String())
	}
	if _, ok, _ := identity.NewTokens(r.DB.Pool, clock.Real{}).Resolve(context.Background(), token); ok {
		t.Error("the revoked token still resolves")
	}

	code = cli.Main([]string{"token", "issue", "--database-url", r.DB.URL, "--log-level", "warn",
		"--kind", "officer", "--subject", "mia-0001", "--agency", "mia", "--role", "judge"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), `has no role "judge"`) {
		t.Errorf("a role the agency lacks: exit %d\n%s", code, errOut.String())
	}
}
