package cli

import (
	"strings"
	"testing"
	"time"
)

func TestHelpDocumentsEveryFlagAndVariable(t *testing.T) {
	var out, errOut strings.Builder
	if code := Main([]string{"serve", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("serve --help exited %d", code)
	}
	help := errOut.String()
	for _, want := range []string{"--addr", "ORTAQ_ADDR", "--data", "ORTAQ_DATA", "--demo", "ORTAQ_DEMO",
		"--database-url", "DATABASE_URL", "127.0.0.1:8080", "./ortaq-data"} {
		if !strings.Contains(help, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, help)
		}
	}
}

func TestEnvironmentAndFlagPrecedence(t *testing.T) {
	t.Setenv("ORTAQ_ADDR", "127.0.0.1:9999")
	t.Setenv("ORTAQ_JOB_TIMEOUT", "3s")
	f := newFlags("serve", "", &strings.Builder{})
	var addr string
	var timeout time.Duration
	f.String(&addr, "addr", "127.0.0.1:8080", "")
	f.Duration(&timeout, "job-timeout", time.Second, "")
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if addr != "127.0.0.1:9999" || timeout != 3*time.Second {
		t.Errorf("environment not applied: addr %s, timeout %s", addr, timeout)
	}
	f = newFlags("serve", "", &strings.Builder{})
	f.String(&addr, "addr", "127.0.0.1:8080", "")
	if err := f.Parse([]string{"--addr", "0.0.0.0:1"}); err != nil || addr != "0.0.0.0:1" {
		t.Errorf("flag should beat environment: %s, %v", addr, err)
	}
}

func TestBadInputExitsWithUsageNotPanic(t *testing.T) {
	for _, args := range [][]string{{}, {"nonsense"}, {"serve", "--no-such-flag"}, {"serve", "extra"}} {
		var out, errOut strings.Builder
		if code := Main(args, &out, &errOut); code != 2 {
			t.Errorf("ortaq %v exited %d; want 2", args, code)
		}
	}
	t.Setenv("ORTAQ_WORKERS", "many")
	var out, errOut strings.Builder
	if code := Main([]string{"serve"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "ORTAQ_WORKERS") {
		t.Errorf("bad ORTAQ_WORKERS: exit %d, %q; want 1 naming the variable", code, errOut.String())
	}
}

func TestVersion(t *testing.T) {
	var out strings.Builder
	if code := Main([]string{"version"}, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "ortaq ") {
		t.Errorf("version: %d %q", code, out.String())
	}
}

func TestNoPostgreSQLSaysHowToInstall(t *testing.T) {
	t.Setenv("ORTAQ_PG_BIN", t.TempDir())
	t.Setenv("DATABASE_URL", "")
	t.Setenv("ORTAQ_DATABASE_URL", "")
	var out, errOut strings.Builder
	code := Main([]string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "apt-get install -y postgresql") || !strings.Contains(errOut.String(), "DATABASE_URL") {
		t.Errorf("serve without server binaries: exit %d\n%s", code, errOut.String())
	}
}

func TestServiceLintAndTest(t *testing.T) {
	var out, errOut strings.Builder
	if code := Main([]string{"service", "lint", "../servicedef/testdata/bad-everything.yaml"}, &out, &errOut); code != 1 {
		t.Errorf("lint of a bad file exited %d; want 1", code)
	}
	if !strings.Contains(out.String(), "bad-everything.yaml:35:39: expr.compile: derive.adult: undefined field 'nope'") {
		t.Errorf("lint output lacks the positioned CEL error:\n%s", out.String())
	}
	out.Reset()
	if code := Main([]string{"service", "test", "../servicedef/testdata/valid-review.yaml"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "2 passed, 0 failed") {
		t.Errorf("service test exited %d:\n%s", code, out.String())
	}
	if code := Main([]string{"service", "lint", "no-such-file.yaml"}, &out, &errOut); code != 1 {
		t.Errorf("lint of a missing file exited %d; want 1", code)
	}
}

func TestServiceDiff(t *testing.T) {
	var out, errOut strings.Builder
	f := "../servicedef/testdata/valid-review.yaml"
	if code := Main([]string{"service", "diff", f, f}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "no changes") {
		t.Errorf("diff of a file with itself: %d %s", code, out.String())
	}
	out.Reset()
	if code := Main([]string{"service", "diff", f, "../../services/address-certificate.yaml"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "different services") {
		t.Errorf("diff of two services: %d %s", code, out.String())
	}
}

func TestServiceTestChecksTheEnvironmentToo(t *testing.T) {
	t.Setenv("ORTAQ_SIMULATE", "perhaps")
	var out, errOut strings.Builder
	if code := Main([]string{"service", "test", "../servicedef/testdata/valid-review.yaml"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "ORTAQ_SIMULATE") {
		t.Errorf("bad ORTAQ_SIMULATE: exit %d, %q", code, errOut.String())
	}
}

func TestBenchProcessHelp(t *testing.T) {
	var out, errOut strings.Builder
	if code := Main([]string{"bench", "process", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("bench process --help exited %d", code)
	}
	for _, want := range []string{"--n", "--concurrency", "--workers", "--rate", "ORTAQ_RATE", "--duration", "--database-url", "--pg-bin", `"3000"`, `"10s"`} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("bench process --help lacks %q:\n%s", want, errOut.String())
		}
	}
	if code := Main([]string{"bench", "nonsense"}, &out, &errOut); code != 2 {
		t.Errorf("bench nonsense exited %d; want 2", code)
	}
}
