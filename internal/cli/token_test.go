package cli

import (
	"slices"
	"strings"
	"testing"
)

func TestTokenUsage(t *testing.T) {
	for _, args := range [][]string{{"token"}, {"token", "nonsense"}, {"token", "revoke"}, {"token", "revoke", "a", "b"}, {"token", "issue", "extra"}} {
		var out, errOut strings.Builder
		if code := Main(args, &out, &errOut); code != 2 {
			t.Errorf("ortaq %v exited %d; want 2", args, code)
		}
	}
	var out, errOut strings.Builder
	if code := Main([]string{"token", "issue", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("token issue --help exited %d", code)
	}
	for _, want := range []string{"--kind", "--subject", "--agency", "--role", "ORTAQ_ROLE", "--ttl", `"12h0m0s"`, "--note", "--database-url", "DATABASE_URL"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("token issue --help lacks %q:\n%s", want, errOut.String())
		}
	}
}

func TestRepeatedFlag(t *testing.T) {
	t.Setenv("ORTAQ_ROLE", "a, b")
	var roles []string
	f := newFlags("token issue", "", &strings.Builder{})
	f.Strings(&roles, "role", "")
	if err := f.Parse(nil); err != nil || !slices.Equal(roles, []string{"a", "b"}) {
		t.Errorf("from the environment: %v %v", roles, err)
	}
	roles = nil
	f = newFlags("token issue", "", &strings.Builder{})
	f.Strings(&roles, "role", "")
	if err := f.Parse([]string{"--role", "x", "--role", "y"}); err != nil || !slices.Equal(roles, []string{"x", "y"}) {
		t.Errorf("flags should replace the environment: %v %v", roles, err)
	}
}
