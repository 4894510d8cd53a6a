// Package officer is the portal's pages for officers of state agencies: the
// inbox of review tasks of the officer's agency and roles (filters,
// deadlines marked in words when overdue or due today, keyset paging), a
// task with the application's inputs, the registry data with the registry
// and legal basis it came from, the timeline and the attachments, and the
// actions on it: claim, release, and the decisions its step allows
// (approve with the step's outputs, refuse with one of its refusals, return
// for correction with a reason), each with a comment and optional files.
//
// Every page is for signed-in officers only: anonymous visitors are sent to
// sign in, citizens and systems get 403, and a task of another agency or
// role is 404, as if it did not exist (the engine decides entitlement). The
// engine audits every read of the application's data and every action.
//
// Owns: routes /officer, /officer/tasks/{id}, /officer/tasks/{id}/claim,
// /officer/tasks/{id}/release, /officer/tasks/{id}/decision,
// /officer/tasks/{id}/attachments/{attachment}.
//
// May import: internal/portal, internal/web, internal/apierr, internal/i18n,
// internal/identity, internal/process, internal/service.
package officer
