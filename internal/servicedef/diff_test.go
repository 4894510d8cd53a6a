package servicedef

import (
	"os"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	src, err := os.ReadFile("testdata/valid-review.yaml")
	if err != nil {
		t.Fatal(err)
	}
	old, problems := Compile(src, demoEnv())
	if problems != nil {
		t.Fatal(problems)
	}
	changed := strings.NewReplacer(
		"version: 3", "version: 4",
		"deadline: P3D", "deadline: P5D",
		"target: PT10M", "target: PT5M",
		"en: Registration at the place of residence}", "en: Residence registration}",
		"required: [iin, kato, owner_consent]", "required: [iin, kato]",
	).Replace(string(src))
	new, problems := Compile([]byte(changed), demoEnv())
	if problems != nil {
		t.Fatal(problems)
	}
	var got []string
	for _, c := range Diff(old, new) {
		got = append(got, c.For+": "+c.What)
	}
	want := []string{
		`citizens: the title (en) changes from "Registration at the place of residence" to "Residence registration"`,
		`citizens: input "owner_consent" becomes optional`,
		`officers: the deadline of step "review" changes from 3 working days to 5 working days`,
		`citizens: the promised delivery time changes from 10m0s to 5m0s`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := Diff(old, old); len(d) != 0 {
		t.Errorf("Diff of a plan with itself: %v", d)
	}
}
