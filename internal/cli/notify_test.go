package cli

import (
	"strings"
	"testing"
)

// TestNotifyUsage: wrong invocations exit 2 naming the problem, before any
// database is opened; --help documents every flag.
func TestNotifyUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"notify"}, "usage: ortaq notify outbox"},
		{[]string{"notify", "send"}, `unknown subcommand "send"`},
		{[]string{"notify", "outbox", "--channel", "fax"}, `--channel "fax": use sms or email`},
		{[]string{"notify", "outbox", "--limit", "0"}, "--limit must be at least 1"},
		{[]string{"notify", "outbox", "extra"}, `unexpected argument "extra"`},
	} {
		var out, errOut strings.Builder
		if code := Main(c.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("ortaq %v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut.String(), c.want)
		}
	}
	var out, errOut strings.Builder
	if code := Main([]string{"notify", "outbox", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("notify outbox --help exited %d", code)
	}
	for _, want := range []string{"--to", "ORTAQ_TO", "--channel", "--limit", "--follow", "--database-url", "DATABASE_URL"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("notify outbox --help lacks %q", want)
		}
	}
	out.Reset()
	Main([]string{"help"}, &out, &errOut)
	if !strings.Contains(out.String(), "ortaq notify outbox") {
		t.Errorf("ortaq help does not list notify outbox")
	}
}
