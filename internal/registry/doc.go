// Package registry owns the state registries the platform holds, declared
// by definitions (YAML, see the registries directory): each registry's key
// (IIN, BIN or its own id), attributes with JSON Schema types and
// constraints, owner agency, personal-data class of each attribute, and
// which attributes are mastered here and which are copies of another
// registry's master; classifiers (KATO, countries, document types) are
// versioned code lists the attributes refer to.
//
// Records keep their whole history: every create, update, correction and
// cancellation is a new row of registry_record_version (who, when, why:
// the legal basis or the application), which a trigger keeps append-only;
// a record's current state is its newest version, found by the primary key,
// so nothing is ever updated in place. Every committed change emits
// registry.<name>.changed through the outbox table in its transaction (an
// import, registry.<name>.imported per batch, naming the keys). Systems of
// the agencies that may read a registry follow these events with a cursor
// (GET /api/v1/registries/{registry}/changes), each change audited as a read
// of the person; the platform's own capabilities consume them with
// outbox.Consume.
// Reads ([Store.Get], as of a past instant too, [Store.History],
// [Store.Search], [Store.Export]) take the reader's [Access] and write one
// audit event per record read, in the reader's transaction: there is no way
// to read a person's data without leaving a trace. [Store.Import] loads CSV
// or NDJSON streams row by row, rejecting bad rows by row and field.
//
// The process engine reads a person with [Store.Person]: the population
// record and the addresses record of an IIN in one query, composed into a
// [Person] whose address names its region and locality from the KATO
// classifier, each record read audited in the same statement.
//
// Definitions come from the files ([Store.Install]) and from the API
// ([Store.Publish]: POST /api/v1/registries with a YAML file, or the
// GovStack Database API's modify, converted by [GovStackDefinition]), both
// checked by [ParseDefinition]; a version that would make records invalid
// is refused. Only platform administrators and the owner agency's
// registry administrators ([RegistryAdministratorRole]) publish and
// archive ([Store.Archive]: no new writes, nothing deleted). Each registry
// has a stable number in registry_database (the Database API's id); every
// node reloads published definitions and archives within a second
// ([Store.Watch]), and at start-up the newest installed version wins.
//
// An attribute declared `indexed: true` (the demo's references to a person
// by IIN) gets a partial expression index of its own registry, built
// without blocking writes when the definition is installed or published:
// a search by it, and a service's `by:` source, look up the keys that held
// the value instead of reading the whole registry.
//
// Owns: tables registry_definition, registry_classifier,
// registry_record_version, registry_database; routes
// /api/v1/registries/..., /api/v1/classifiers/..., /api/v1/catalogue/...,
// the GovStack Digital Registries Data and Database APIs under
// /gs/registries/; outbox topics registry.<name>.changed,
// registry.<name>.imported, registry.definition.changed.
//
// May import: internal/pg, internal/audit, internal/outbox, internal/iin,
// internal/i18n, internal/clock, internal/apierr, internal/identity,
// internal/web.
package registry
