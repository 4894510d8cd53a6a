// Package demo seeds a platform with demonstration data: agencies with
// signing keys, a synthetic population with valid, obviously synthetic IINs
// (serial numbers from 9000) written into the population and addresses
// registries (and the first citizens into every demo registry), and the
// demo e-services. Seeding is idempotent: running it again changes nothing.
//
// No real person's data is used anywhere.
//
// May import: internal/iin, internal/i18n, internal/agency, internal/registry,
// internal/service, internal/servicedef, internal/document, and the embedded
// definitions of the services directory and the registries directory.
package demo
