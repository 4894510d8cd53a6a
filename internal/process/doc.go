// Package process is the engine that runs applications for e-services.
//
// An application is submitted in one transaction that inserts it, records the
// first timeline step, writes an outbox event and enqueues a durable River job.
// Its inputs are checked first: the applicant's IIN (structure and check digit)
// and the service form's JSON Schema, every wrong field named.
// A worker then runs the service's compiled plan (internal/servicedef): it
// reads each data source from its registry (audited, with the source's legal
// basis or consent as the purpose), derives values, and walks the steps:
// decide (eligibility rules; the first that fails refuses), issue (a signed
// document whose fields carry their labels), notify (an outbox message).
// Services with review steps are refused at submission until officers' task
// lists exist.
//
// # Guarantees
//
//   - Exactly one outcome per application. The whole flow, the timeline rows,
//     the status change, the outbox event and the job's completion commit in a
//     single transaction on a row lock of the application. A crash anywhere
//     rolls all of it back; River rescues the job and runs it again; a run
//     that finds the application already decided only completes its job.
//   - Exactly one document per application and issue step: the document
//     store refuses a second document for the same source.
//   - A submission carries an idempotency key; resubmitting with the same key
//     returns the first application, and reusing a key for a different request
//     is refused.
//   - An application keeps the service version it started with.
//   - Several nodes on one database share the work; River's row locking
//     hands each job to one worker at a time.
//
// Owns: tables application, application_step; River job kind
// "process.run_application"; routes /api/v1/applications...; outbox topics
// process.application.submitted and process.application.decided.
//
// May import: internal/pg, internal/apierr, internal/i18n, internal/web,
// internal/clock, internal/iin, internal/refnum, internal/outbox,
// internal/service, internal/servicedef, internal/registry, internal/document,
// River.
package process
