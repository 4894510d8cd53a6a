package registry

import (
	"os"
	"strings"
	"testing"
)

// demoAgencies mirrors the demo's agencies and roles (internal/demo.Roles).
var demoAgencies = map[string][]string{
	"mia":  {"migration-officer", "registry-officer"},
	"mdai": {"platform-administrator"},
	"moj":  {"civil-registry-officer"},
	"mlsp": {"benefits-officer", "pension-officer"},
	"gpo":  {"special-records-officer"},
	"mf":   {"tax-officer"},
	"moe":  {"preschool-officer"},
}

func loadDemoSet(t testing.TB) *Set {
	t.Helper()
	set, bad, err := LoadSet(os.DirFS("../../registries"), demoAgencies)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range bad {
		for _, p := range f.Problems {
			t.Errorf("%s", p.Format(f.File))
		}
	}
	return set
}

func TestDemoDefinitionsLint(t *testing.T) {
	set := loadDemoSet(t)
	for _, name := range []string{"population", "civil_acts", "addresses", "legal_entities", "individual_entrepreneurs",
		"identity_documents", "criminal_records", "kindergarten_places"} {
		if set.Registries[name] == nil {
			t.Errorf("registry %s missing", name)
		}
	}
	for _, name := range []string{"kato", "countries", "document-types"} {
		if set.Classifiers[name] == nil {
			t.Errorf("classifier %s missing", name)
		}
	}
}

func TestLintProblemsHavePositions(t *testing.T) {
	set := loadDemoSet(t)
	env := Env{Agencies: demoAgencies, Classifiers: set.Classifiers, Registries: set.Registries}
	src := `registry: things
version: 1
title: {kk: "a", ru: "b"}
owner: nobody
basis: "x"
key: {attribute: id, kind: uuid}
access:
  write: [clerk]
attributes:
  - name: id
    title: {kk: a, ru: b, en: c}
    schema: {type: string}
  - name: place
    title: {kk: a, ru: b, en: c}
    schema: {type: string}
    classifier: planets
    master: population.nothing
    personal: secret
  - name: place
    title: {kk: a, ru: b, en: c}
    schema: {type: wrong}
`
	_, probs := ParseDefinition([]byte(src), env)
	want := map[string]Pos{
		"text.missing":           {3, 8},
		"ref.unknown_agency":     {4, 8},
		"key.kind":               {6, 28},
		"ref.unknown_classifier": {16, 17},
		"ref.unknown_attribute":  {17, 13},
		"attribute.personal":     {18, 15},
		"attribute.duplicate":    {19, 11},
	}
	got := map[string]Pos{}
	for _, p := range probs {
		got[p.Code] = p.Pos
	}
	for code, pos := range want {
		if got[code] != pos {
			t.Errorf("%s at %v, want %v (all: %v)", code, got[code], pos, probs)
		}
	}
	_, probs = ParseDefinition([]byte("registry: x\nversion: 1\nunknown: 3\n"), env)
	if len(probs) == 0 || probs[0].Code != "unknown_field" || probs[0].Pos.Line != 3 {
		t.Errorf("unknown field: %v", probs)
	}
	_, probs = ParseClassifier([]byte("classifier: c\nversion: 1\ntitle: {kk: a, ru: b, en: c}\ncodes:\n  - {code: A, title: {kk: a, ru: b, en: c}}\n  - {code: A, parent: Z, title: {kk: a, ru: b, en: c}}\n"))
	var codes []string
	for _, p := range probs {
		codes = append(codes, p.Code)
	}
	if strings.Join(codes, ",") != "code.duplicate,code.parent" {
		t.Errorf("classifier problems: %v", probs)
	}
}

func TestCheckRecord(t *testing.T) {
	set := loadDemoSet(t)
	d := set.Registries["population"]
	good := map[string]any{"iin": "900101300017", "last_name": "A", "first_name": "B", "birth_date": "1990-01-01", "sex": "male",
		"citizenship": "KZ", "address_kato": "711110000"}
	if probs := d.Check(good, set.Classifiers); probs != nil {
		t.Fatalf("good record: %v", probs)
	}
	bad := map[string]any{"iin": "900101300018", "last_name": 5, "birth_date": "01.01.1990", "sex": "x",
		"citizenship": "XX", "address_kato": "999999999", "father_iin": "123", "extra": 1}
	got := map[string]string{}
	for _, p := range d.Check(bad, set.Classifiers) {
		got[p.Path] += p.Code + " "
	}
	for path, code := range map[string]string{"/iin": "iin.checksum", "/last_name": "type", "/first_name": "required", "/birth_date": "format",
		"/sex": "one_of", "/citizenship": "code.unknown", "/address_kato": "code.unknown", "/father_iin": "format", "/extra": "unknown_field"} {
		if !strings.Contains(got[path], code) {
			t.Errorf("%s: got %q, want %s (all %v)", path, got[path], code, got)
		}
	}
}

func FuzzParseDefinition(f *testing.F) {
	for _, name := range []string{"population.yaml", "civil_acts.yaml", "legal_entities.yaml", "classifiers/kato.yaml"} {
		b, err := os.ReadFile("../../registries/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("registry: [\n"))
	f.Add([]byte("attributes: {a: 1}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		d, probs := ParseDefinition(src, Env{Agencies: demoAgencies})
		if d == nil && len(probs) == 0 {
			t.Fatal("no definition and no problem")
		}
		if d != nil {
			d.Check(map[string]any{"x": 1}, nil)
		}
		ParseClassifier(src)
	})
}

// A definition's schemas may not make the platform read its own files or
// fetch URLs.
func TestExternalRefRefused(t *testing.T) {
	src := `registry: things
version: 1
title: {kk: a, ru: b, en: c}
owner: mia
basis: "x"
key: {attribute: id, kind: id}
access:
  write: [migration-officer]
attributes:
  - name: id
    title: {kk: a, ru: b, en: c}
    schema: {type: string}
  - name: note
    title: {kk: a, ru: b, en: c}
    schema: {$ref: "file:///etc/hostname"}
`
	_, probs := ParseDefinition([]byte(src), Env{Agencies: demoAgencies})
	for _, p := range probs {
		if p.Code == "attribute.schema" && strings.Contains(p.Message, "may refer only to itself") {
			return
		}
	}
	t.Fatalf("an external $ref was not refused: %v", probs)
}
