// Package pg owns Ortaq's access to PostgreSQL, the platform's only database.
//
// It provides three things:
//
//   - [StartCluster]: a supervisor for a private PostgreSQL cluster run from the
//     server binaries installed on the machine (embedded mode). The cluster
//     lives inside a data directory, listens only on a unix socket in a private
//     directory, and dies with its parent process. When Ortaq runs as root the
//     cluster runs as the "postgres" system user, because PostgreSQL refuses root.
//   - [Open]: a pgx connection pool with the platform's settings.
//   - [Migrate]: applies the schemas that capabilities declare ([Schema]), each
//     with its own embedded goose migrations and version table, in the order the
//     composition root gives, under one advisory lock so that several nodes
//     starting at once migrate exactly once.
//
// Owns: the data directory layout of embedded mode (pg/, run/, postgres.log, ortaq.lock)
// and the goose_* version tables.
//
// May import: the standard library, pgx, goose. Nothing internal.
package pg
