package app_test

import (
	"slices"
	"testing"

	"github.com/ortaq/ortaq/internal/apptest"
)

// TestCatalogueKnowsOnePopulation: a service's population data source
// reads a person from the population and addresses registries, and the
// data catalogue says so: the service is a consumer of both, the address
// attributes it shows the applicant as its prefill, and no other place
// holds the persons.
func TestCatalogueKnowsOnePopulation(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 0, 10)
	consumersOf := func(attribute string) []map[string]any {
		t.Helper()
		res := call(t, "GET", r.Server.URL+"/api/v1/catalogue/attributes?q="+attribute, "")
		attrs, _ := res.body["attributes"].([]any)
		for _, a := range attrs {
			if e, _ := a.(map[string]any); str(e["registry"])+"."+str(e["attribute"]) == attribute {
				var out []map[string]any
				for _, c := range e["consumers"].([]any) {
					if c := c.(map[string]any); c["service"] == "address-certificate" {
						out = append(out, c)
					}
				}
				return out
			}
		}
		t.Fatalf("catalogue has no %s: %d %s", attribute, res.status, res.raw)
		return nil
	}
	person, address := consumersOf("population.last_name"), consumersOf("addresses.kato")
	if len(person) != 1 || str(person[0]["data_source"]) != "person" || !slices.Contains(person[0]["prefill"].([]any), any("address")) {
		t.Errorf("address-certificate as a consumer of population = %v", person)
	}
	if len(address) != 1 || str(address[0]["data_source"]) != "person" || str(address[0]["registry"]) != "addresses" ||
		!slices.Contains(address[0]["prefill"].([]any), any("street")) {
		t.Errorf("address-certificate as a consumer of addresses = %v", address)
	}
	var tables int
	if err := r.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE tablename = 'population_person'`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("population_person tables: %d, %v; want none", tables, err)
	}
}
