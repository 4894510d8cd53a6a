// Package registry owns the state registries the platform holds. For now this
// is the population registry: a person by IIN, with names, birth date, sex and
// registered address.
//
// Every read of a person goes through [Population.Person], which takes the
// reader's identity and purpose and records the access in the audit trail in
// the caller's transaction: there is no way to read a person's data without
// leaving a trace. Full history, as-of reads, the data catalogue and the
// GovStack API come with the registries issue.
//
// Owns: table population_person.
//
// May import: internal/pg, internal/audit, internal/iin, internal/i18n, internal/clock.
package registry
