package app_test

import (
	"bytes"
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/ortaq/ortaq/"

type listedPackage struct {
	ImportPath string
	Imports    []string
	Dir        string
}

// Sub-packages count too: "internal/exchange/xroad".
var internalName = regexp.MustCompile(`internal/[a-z0-9]+(?:/[a-z0-9]+)*|services directory|registries directory`)

// TestImportRules reads every package's "May import:" line and fails when the
// package imports an internal package the line does not allow, when a
// package lacks the line, or when production code imports the test harness.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var checked int
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(p.ImportPath, module)
		var internal []string
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module) {
				internal = append(internal, strings.TrimPrefix(imp, module))
			}
		}
		if rel == "cmd/ortaq" {
			if !slices.Equal(internal, []string{"internal/cli"}) {
				t.Errorf("cmd/ortaq imports %v; main must only hand over to internal/cli", internal)
			}
			continue
		}
		for _, harness := range []string{"internal/pgtest", "internal/apptest", "internal/portal/portaltest"} {
			if slices.Contains(internal, harness) && rel != "internal/apptest" && rel != "internal/portal/portaltest" {
				t.Errorf("%s imports %s outside tests", rel, harness)
			}
		}
		if slices.Contains(internal, "internal/app") && !slices.Contains([]string{"internal/cli", "internal/bench", "internal/apptest", "internal/servicetest"}, rel) {
			t.Errorf("%s imports internal/app; only the command line, its benchmarks and the test platform may", rel)
		}
		_, rule, ok := strings.Cut(packageComment(t, p.Dir), "May import:")
		if !ok {
			t.Errorf("%s: package comment has no \"May import:\" line", rel)
			continue
		}
		rule, _, _ = strings.Cut(rule, "\n\n")
		checked++
		if strings.Contains(rule, "every internal package") {
			continue
		}
		allowed := internalName.FindAllString(rule, -1)
		for _, dir := range []string{"services", "registries"} {
			if slices.Contains(allowed, dir+" directory") {
				allowed = append(allowed, dir)
			}
		}
		for _, imp := range internal {
			if !slices.Contains(allowed, imp) {
				t.Errorf("%s imports %s, which its doc.go does not allow (May import:%s)", rel, imp, strings.TrimRight(rule, "\n"))
			}
		}
	}
	if checked < 10 {
		t.Errorf("checked only %d packages; is go list working?", checked)
	}
}

// packageComment returns the package comment in dir (go list's Doc is only
// its first sentence).
func packageComment(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if file.Doc != nil {
			b.WriteString(file.Doc.Text())
		}
	}
	return b.String()
}
