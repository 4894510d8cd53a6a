package servicedef

import "cel.dev/cel-go/common/types"

// Environment is what a definition may refer to: agencies with their roles,
// and registries with the shape of their records.
type Environment struct {
	Agencies   map[string][]string // agency id -> officer roles
	Registries map[string]Registry
	// Exchange holds the exchange catalogue's service ids; nil when it is
	// not known here (a data source's service is then checked for its form
	// only).
	Exchange map[string]bool
}

// Registry describes a registry a data source may read.
type Registry struct {
	// Key is the record field that identifies a record, e.g. "iin".
	Key string
	// Record is the JSON Schema of one record.
	Record map[string]any
	// Personal is true when records are personal data: a read needs a legal
	// basis or the person's consent.
	Personal bool
	// Indexed are the fields the registry keeps an index on, which a source
	// reading every record with a value (by:) must use; nil when the
	// environment does not say (then lint does not check).
	Indexed []string
}

func textSchema() map[string]any {
	return map[string]any{"type": "object", "properties": map[string]any{
		"kk": map[string]any{"type": "string"}, "ru": map[string]any{"type": "string"}, "en": map[string]any{"type": "string"},
	}}
}

// PopulationRegistry is the record shape of a population data source: a
// person (internal/registry's Store.Person) with their registered address,
// its region and locality named in three languages.
func PopulationRegistry() Registry {
	str := map[string]any{"type": "string"}
	return Registry{Key: "iin", Personal: true, Record: map[string]any{"type": "object", "properties": map[string]any{
		"iin": str, "last_name": str, "first_name": str, "patronymic": str,
		"birth_date": map[string]any{"type": "string", "format": "date"},
		"sex":        str,
		"address": map[string]any{"type": "object", "properties": map[string]any{
			"kato": str, "region": textSchema(), "locality": textSchema(), "street": str, "house": str, "flat": str,
		}},
	}}}
}

// celTimestamp is the type of "now" in expressions.
var celTimestamp = types.TimestampType
