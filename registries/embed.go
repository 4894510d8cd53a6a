// Package registries holds the declarative definitions of the platform's
// state registries (one YAML file per registry, *.yaml) and the classifiers
// they use (classifiers/*.yaml): data, not code, embedded so that
// `ortaq serve --demo` installs them. Lint them with `ortaq registry lint
// registries`.
//
// May import: nothing but the standard library.
package registries

import "embed"

// Files are the definition files: *.yaml and classifiers/*.yaml.
//
//go:embed *.yaml classifiers/*.yaml
var Files embed.FS
