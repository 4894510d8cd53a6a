// Package citizen is the portal's applying journey for citizens: the
// service catalogue (search, grouped by life situation), a service's page
// (what you get, how long, what it costs, what you need) with its form
// generated from the service's JSON Schema and pre-filled with what the
// state already holds, drafts, submitting, the status page with its
// timeline, withdrawing, correcting a returned application, and the list
// of my applications.
//
// Owns: routes /, /services/{id}, /services/{id}/apply, /services/{id}/draft,
// /apply/{service} (the older form action, same as /services/{id}/apply),
// /applications, /applications/{id}, /applications/{id}/withdraw,
// /applications/{id}/correct; table portal_draft.
//
// May import: internal/portal, internal/web, internal/apierr, internal/i18n,
// internal/identity, internal/pg, internal/service, internal/servicedef,
// internal/process, internal/registry.
package citizen
