package cli

import (
	"strings"
	"testing"
	"time"
)

// TestProcessUsage: wrong invocations exit 2 with a message naming the
// problem, before any database is opened.
func TestProcessUsage(t *testing.T) {
	const id = "0b9c3c1e-5d4a-4c1e-9f57-3f4c2a1b0d9e"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"process"}, "usage: ortaq process"},
		{[]string{"process", "restart"}, `unknown subcommand "restart"`},
		{[]string{"process", "inspect"}, "usage: ortaq process inspect"},
		{[]string{"process", "inspect", "A-2026-0001"}, `"A-2026-0001" is not an application id`},
		{[]string{"process", "inspect", id, "extra"}, "usage: ortaq process inspect"},
		{[]string{"process", "retry", "not-a-uuid"}, `"not-a-uuid" is not an application id`},
		{[]string{"process", "cancel", id}, "--reason is required"},
		{[]string{"process", "cancel", id, "--reason", "  "}, "--reason is required"},
		{[]string{"process", "failed", "--limit", "0"}, "--limit must be at least 1"},
		{[]string{"process", "failed", "extra"}, `unexpected argument "extra"`},
	} {
		var out, errOut strings.Builder
		if code := Main(c.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("ortaq %v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut.String(), c.want)
		}
	}
}

func TestProcessHelpMentionsTheLockedDataDirectory(t *testing.T) {
	for _, sub := range []string{"inspect", "failed", "retry", "cancel"} {
		var out, errOut strings.Builder
		if code := Main([]string{"process", sub, "--help"}, &out, &errOut); code != 0 {
			t.Fatalf("process %s --help exited %d", sub, code)
		}
		for _, want := range []string{"ortaq serve is stopped", "--database-url", "DATABASE_URL"} {
			if !strings.Contains(errOut.String(), want) {
				t.Errorf("process %s --help lacks %q:\n%s", sub, want, errOut.String())
			}
		}
	}
}

func TestMaskIINs(t *testing.T) {
	for in, want := range map[string]string{
		"900101300017":                         "********0017",
		"citizen:900101300017":                 "citizen:********0017",
		"person 900101300017 not found":        "person ********0017 not found",
		"0b9c3c1e-5d4a-4c1e-9f57-123456789012": "0b9c3c1e-5d4a-4c1e-9f57-123456789012", // a UUID's last group
		"officer:mia-0001":                     "officer:mia-0001",
		"1234567890123":                        "1234567890123",
		"A900101300017":                        "A900101300017",
	} {
		if got := maskIINs(in); got != want {
			t.Errorf("maskIINs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                         "0",
		1234 * time.Microsecond:   "1.2ms",
		1234 * time.Millisecond:   "1.23s",
		3*time.Hour + time.Second: "3h0m1s",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%s) = %q, want %q", d, got, want)
		}
	}
}
