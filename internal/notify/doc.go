// Package notify owns messages to people: it turns outbox events into
// messages in Kazakh, Russian and English and delivers them by SMS, e-mail
// and the in-app inbox, as eGov's short number 1414 does for Kazakhstan.
//
// # From event to message
//
// A consumer of the outbox ([outbox.Consume], consumer "notify") reads the
// events below in commit-safe order and, in the same transaction that moves
// its cursor, inserts one row per message:
//
//   - notify.message.requested, process.payment.requested,
//     process.signature.requested, process.application.returned: to the
//     citizen, by IIN (to_iin in the event; else the application's
//     applicant, asked of [Applications]);
//   - notify.officer.escalation: to the officers of the agency and role, one
//     in-app message in that role's queue;
//   - consent.denied (an attempt to read a person's data without a legal
//     basis or consent): to the data-protection officers ([Config]
//     .DataProtection, by default mdai/data-protection-officer), naming the
//     requester, the items, the refusal and the request id, and the person
//     only by the IIN's last four digits.
//
// Officers read what was sent to each role they hold in their agency in
// the same in-app inbox (GET /api/v1/notifications, the portal's
// /notifications) as citizens read theirs.
//
// Every citizen's message goes to the citizen's in-app inbox (GET
// /api/v1/notifications) and, when the citizen has left a contact (PUT
// /api/v1/notifications/contact), by SMS to the phone and by e-mail. SMS and
// e-mail are in the citizen's language; with none chosen, in Kazakh and then
// Russian, as 1414 writes. The inbox keeps all three languages and shows the
// reader's.
//
// Messages are unique per thing told, channel and recipient: an event
// delivered twice makes no second message, and the two events process
// writes for one returned application (process.application.returned and
// notify.message.requested with template application.returned) make one.
//
// # Delivery
//
// In-app messages are delivered when written. SMS and e-mail wait as queued
// for their [Sender]; a sender loop on every node takes due messages with
// FOR UPDATE SKIP LOCKED, leases them (attempts+1, next attempt pushed past
// the send timeout) in a short transaction, sends outside any transaction
// and records the outcome: sent; or still queued with the error and a
// doubling backoff ([Config].RetryBase up to RetryMax); or failed after
// MaxAttempts. A node that dies while sending leaves a lease that runs out,
// and the message is sent again: delivery is at least once, and senders get
// the message id to let a provider drop the duplicate.
//
// Counts of messages made, sent, retried and failed per channel go to
// /metrics (ortaq_notify_messages_total).
//
// [DevSender] is the development adapter of sms and e-mail: a real send
// into table notify_dev_outbox (`ortaq notify outbox` prints it), not a
// fake success; its errors take the retry path like any provider's.
//
// # Personal data
//
// Phones, e-mail addresses and IINs are never logged (errors of a sender are
// logged with the address masked). Each read of a contact (to address a
// message, or by its owner) and each write writes an audit event in its
// transaction.
//
// Owns: tables notify_contact, notify_message, notify_dev_outbox; outbox
// consumer "notify"; routes /api/v1/notifications....
//
// May import: internal/apierr, internal/audit, internal/clock, internal/i18n,
// internal/identity, internal/outbox, internal/pg, internal/web.
package notify
