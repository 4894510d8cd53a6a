// Package servicedef reads service definition files: one versioned YAML file
// per e-service that declares its texts (kk, ru, en), its form (a JSON
// Schema with presentation hints), the registry data it reads and on what
// legal basis, its rules in CEL, its steps, its SLA and its test cases.
//
// [Compile] parses a file strictly (unknown fields, wrong types and
// malformed values are problems with file positions, never panics), checks
// every reference (agencies, roles, registries and their fields, refusals,
// steps), type-checks every CEL expression against the form's and the
// registries' types with a cost budget, and returns a [Plan]: the compiled
// form of the service that the engine runs and [Plan.RunTests] simulates.
//
// Problem codes are stable: tools and editors may switch on them.
//
// May import: internal/i18n, cel-go, the YAML parser, the JSON Schema
// validator and the standard library.
package servicedef
