package servicedef

func demoEnv() Environment {
	return Environment{
		Agencies: map[string][]string{"mia": {"migration-officer"}, "mdai": {}},
		Registries: map[string]Registry{"population": PopulationRegistry(), "fines": {Key: "fine_id", Personal: true, Record: map[string]any{
			"type": "object", "properties": map[string]any{
				"fine_id": map[string]any{"type": "string"}, "iin": map[string]any{"type": "string"},
				"amount_tiyn": map[string]any{"type": "integer"}, "paid": map[string]any{"type": "boolean"},
			}}, Indexed: []string{"iin"}}},
	}
}
