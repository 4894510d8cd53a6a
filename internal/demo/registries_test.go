package demo

import (
	"os"
	"testing"

	"github.com/ortaq/ortaq/internal/registry"
)

// TestDemoRegistriesAreValid checks every demo record against its
// registry's definition, and that family links point both ways.
func TestDemoRegistriesAreValid(t *testing.T) {
	set, bad, err := registry.LoadSet(os.DirFS("../../registries"), Roles())
	if err != nil || len(bad) > 0 {
		t.Fatalf("%v %v", err, bad)
	}
	d := BuildRegistries(Population(RegistryPeople, PopulationSeed))
	for name, recs := range d.Records {
		def := set.Registries[name]
		if def == nil {
			t.Fatalf("no registry %s", name)
		}
		keys := map[string]bool{}
		for _, r := range recs {
			if p := def.Check(r, set.Classifiers); p != nil {
				t.Fatalf("%s %v: %v", name, r, p)
			}
			k := r[def.Key.Attribute].(string)
			if keys[k] {
				t.Fatalf("%s: key %s twice", name, k)
			}
			keys[k] = true
		}
	}
	for _, name := range []string{"population", "civil_acts", "addresses", "legal_entities", "individual_entrepreneurs", "identity_documents", "criminal_records", "kindergarten_places"} {
		if len(d.Records[name]) == 0 {
			t.Errorf("registry %s has no demo records", name)
		}
	}
	byIIN := map[string]map[string]any{}
	for _, r := range d.Records["population"] {
		byIIN[r["iin"].(string)] = r
	}
	for _, c := range d.Changes {
		byIIN[c.Key] = c.Data
	}
	spouses, parents := 0, 0
	for id, r := range byIIN {
		if s, ok := r["spouse_iin"].(string); ok {
			spouses++
			if byIIN[s]["spouse_iin"] != id {
				t.Errorf("%s's spouse %s is not married to them", id, s)
			}
		}
		if m, ok := r["mother_iin"].(string); ok {
			parents++
			found := false
			for _, k := range byIIN[m]["children_iins"].([]any) {
				found = found || k == id
			}
			if !found {
				t.Errorf("%s is not a child of their mother %s", id, m)
			}
		}
	}
	if spouses < 100 || parents < 500 || len(d.Changes) < 20 {
		t.Errorf("%d married, %d with a mother, %d later versions", spouses, parents, len(d.Changes))
	}
}
