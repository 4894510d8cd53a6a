package servicedef

func demoEnv() Environment {
	return Environment{
		Agencies:   map[string][]string{"mia": {"migration-officer"}, "mdai": {}},
		Registries: map[string]Registry{"population": PopulationRegistry()},
	}
}
