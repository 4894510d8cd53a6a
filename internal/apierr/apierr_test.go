package apierr

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/catalogue.golden")

// TestCatalogueGolden fails when a code is added, removed, renamed or moved to
// another status without the golden file changing with it: codes are a
// contract with every client.
func TestCatalogueGolden(t *testing.T) {
	var b strings.Builder
	b.WriteString("# code\tHTTP status (field codes: -)\n")
	for _, e := range Catalogue() {
		status := "-"
		if e.Status != 0 {
			status = fmt.Sprint(e.Status)
		}
		fmt.Fprintf(&b, "%s\t%s\n", e.Code, status)
	}
	const path = "testdata/catalogue.golden"
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (run go test -update once)", path, err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("error code catalogue changed; if intended, run `go test ./internal/apierr -update` and mention it in the changelog.\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func TestFromKeepsCauseInternal(t *testing.T) {
	cause := errors.New("pq: relation secret_table does not exist")
	e := From(fmt.Errorf("load: %w", cause))
	if e.Code != Internal || e.Status() != 500 {
		t.Fatalf("From(plain error) = %s/%d; want internal/500", e.Code, e.Status())
	}
	if !errors.Is(e, cause) {
		t.Errorf("cause lost: errors.Is(From(err), cause) = false")
	}
	pub := New(ServiceNotFound)
	if got := From(fmt.Errorf("ctx: %w", pub)); got != pub {
		t.Errorf("From(wrapped public error) = %v; want the same *Error", got)
	}
}
