// Package process is the engine that runs applications for e-services.
//
// An application is submitted in one transaction that inserts it, records the
// first timeline step, writes an outbox event and queues a run (table
// process_run).
// Its inputs are checked first: the applicant's IIN (structure and check digit)
// and the service form's JSON Schema, every wrong field named.
//
// A job works the application's compiled plan (internal/servicedef) from its
// cursor to the next pause or the end, in one transaction: it reads each data
// source from its registry (audited, with the source's legal basis or consent
// as the purpose) unless an earlier run did, derives values, and walks the
// steps: decide (the first failing eligibility rule refuses), issue (a signed
// document whose fields carry their labels), notify (an outbox message),
// review (opens an officer's task and pauses: in_review), wait (a timer, and
// pauses: waiting), fee (an invoice in tiyn, an amount in MRP fixed at that
// day's value, and pauses: awaiting_payment until a payment gateway confirms
// it) and sign (the applicant signs a JSON statement of the application,
// verified by internal/esign against the platform's trust roots and the
// applicant's IIN in the certificate; pauses: awaiting_signature). A fee or
// signature not given by its deadline refuses with the step's refusal. The
// registry data read is kept with a paused application so that it resumes
// on the same facts.
//
// Officers work tasks of their agency and role: list (closest deadline
// first), claim, release, decide (approve continues, refuse decides with a
// refusal the step offers, return asks the citizen for a correction), with a
// comment and attachments; every action is audited. A review deadline in
// days counts working days of the calendar; when it passes, a timer
// escalates the task to the step's escalation role, unclaimed, and tells the
// supervisors. Citizens withdraw their undecided applications and correct
// returned ones (the flow runs again from the start on the same version).
// Operators inspect, retry failed and cancel applications (`ortaq process`).
//
// Time comes from the injectable clock: timers fire when the clock passes
// them (FireTimers), so tests advance time instead of sleeping.
//
// # Guarantees
//
//   - Exactly one outcome per application. A worker takes a queued run with
//     FOR UPDATE SKIP LOCKED in the run's own transaction (by the id its
//     node handed over, or by scanning the queue); the run's steps on the
//     timeline, state change, outbox events and the queued run's
//     deletion commit in it, on a row lock of the application. A crash
//     rolls all of it back and frees the queued run for another worker at
//     once: its row lock was the lease. A run that finds the application
//     paused or decided only deletes itself.
//   - Exactly one document per application and issue step: the document
//     store refuses a second document for the same source.
//   - Retries per step: a failed run is retried with exponential backoff up
//     to the failing step's attempts (or the engine's default); each failure
//     is on the timeline with its error; after the last the application is
//     failed, for an operator to retry or cancel. Each try of a step is
//     bounded by the step's timeout.
//   - An application keeps the service version it started with.
//   - Several nodes on one database share the work: SKIP LOCKED hands each
//     queued run to one worker, and each timer to one node.
//   - Lock order: application, then task; application rows are locked FOR NO
//     KEY UPDATE so that inserting rows that refer to them never waits.
//
// Owns: tables application (with its timeline), task, task_attachment,
// process_timer, process_run, invoice, application_signature; routes /api/v1/applications...,
// /api/v1/tasks... and /api/v1/payments; outbox topics
// process.application.{submitted,paused,decided,returned,corrected,signed},
// process.task.{opened,decided}, process.payment.{requested,confirmed},
// process.signature.requested, notify.message.requested,
// notify.officer.escalation.
//
// May import: internal/pg, internal/apierr, internal/audit, internal/identity,
// internal/i18n, internal/web,
// internal/clock, internal/iin, internal/refnum, internal/outbox,
// internal/service, internal/servicedef, internal/registry, internal/document,
// internal/esign, internal/consent,
// pgx.
package process
