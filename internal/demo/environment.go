package demo

import (
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/registries"
)

// Roles are the officer roles of the demo agencies.
func Roles() map[string][]string {
	return map[string][]string{
		"mia":  {"migration-officer", "registry-officer"},
		"mdai": {"platform-administrator", "data-protection-officer"},
		"moj":  {"civil-registry-officer"},
		"mlsp": {"benefits-officer", "pension-officer"},
		"gpo":  {"special-records-officer"},
		"mf":   {"tax-officer"},
		"moe":  {"preschool-officer"},
	}
}

// Environment is what the demo's service definitions may refer to: its
// agencies with their roles and the platform's registries.
func Environment() servicedef.Environment {
	agencies := map[string][]string{}
	for _, a := range Agencies() {
		agencies[a.ID] = Roles()[a.ID]
	}
	env := servicedef.Environment{
		Agencies:   agencies,
		Registries: map[string]servicedef.Registry{"population": servicedef.PopulationRegistry()},
	}
	// The declarative registries, as the platform serves them (app.Build
	// does the same from its store); a population source reads a person,
	// in the shape above.
	if set, bad, err := registry.LoadSet(registries.Files, nil); err == nil && len(bad) == 0 {
		for name, d := range set.Registries {
			if name != registry.PopulationRegistry {
				env.Registries[name] = servicedef.Registry{Key: d.Key.Attribute, Record: d.RecordSchema(), Personal: d.HasPersonalData(), Indexed: d.IndexedAttributes()}
			}
		}
	}
	return env
}
