// Package services holds the demo service definitions, one YAML file per
// e-service (data, not code), embedded so that `ortaq serve --demo` can
// publish them.
//
// May import: nothing but the standard library.
package services

import "embed"

// Files are the definition files, *.yaml at the root.
//
//go:embed *.yaml
var Files embed.FS
