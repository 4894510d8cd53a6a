package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/cli"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/pgtest"
)

// TestRegistryCommands: `ortaq registry import` reports rejected rows by
// row and field and keeps the good ones; export writes them; the catalogue
// answers where a fact is mastered and lists duplicates; lint names the
// place of each problem.
func TestRegistryCommands(t *testing.T) {
	db := pgtest.New(t)
	run := func(args ...string) (int, string, string) {
		var out, errOut strings.Builder
		code := cli.Main(args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	var ids []string
	for serial := 9100; len(ids) < 2; serial++ {
		if id, err := iin.New(time.Date(1991, 4, 5, 0, 0, 0, 0, time.UTC), iin.SexFemale, serial); err == nil {
			ids = append(ids, id.String())
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "people.csv")
	csv := "iin,last_name,first_name,birth_date,sex\n" +
		ids[0] + ",Ахметова,Айгүл,1991-04-05,female\n" +
		"900101300018,Қате,ЖСН,1990-01-01,male\n" +
		ids[1] + ",Сейітова,Дана,1991-04-05,female\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run("registry", "import", "population", file, "--basis", "test load", "--quiet", "--database-url", db.URL, "--log-level", "warn")
	if code != 1 || !strings.Contains(out, "imported 2, rejected 1") || !strings.Contains(out, "row 2: /iin iin.checksum") {
		t.Errorf("import: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run("registry", "export", "population", "--purpose", "test", "--database-url", db.URL, "--log-level", "warn")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, ids[1]) {
		t.Errorf("export: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run("registry", "catalogue", "residential address", "--database-url", db.URL, "--log-level", "warn")
	if code != 0 || !strings.Contains(out, "addresses.kato") || !strings.Contains(out, "population.address_kato") {
		t.Errorf("catalogue: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run("registry", "catalogue", "--duplicates", "--database-url", db.URL, "--log-level", "warn")
	if code != 0 || !strings.Contains(out, `"residential address" is mastered in more than one registry`) {
		t.Errorf("duplicates: exit %d\n%s", code, out)
	}
	if code, _, errOut := run("registry", "import", "population", file, "--database-url", db.URL); code != 1 || !strings.Contains(errOut, "give --basis") {
		t.Errorf("import without a basis: exit %d %s", code, errOut)
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "things.yaml"), []byte("registry: things\nversion: 1\ncolour: red\n"), 0o600)
	code, out, _ = run("registry", "lint", bad)
	if code != 1 || !strings.Contains(out, "things.yaml:3:1: unknown_field") {
		t.Errorf("lint: exit %d\n%s", code, out)
	}
	if code, out, _ := run("registry", "lint", "../../registries"); code != 0 || !strings.Contains(out, "8 registries and 3 classifiers") {
		t.Errorf("lint of the registries: exit %d\n%s", code, out)
	}
}
