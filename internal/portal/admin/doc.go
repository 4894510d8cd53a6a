// Package admin is the portal's pages for the platform's administrators and
// analysts: the published services and their versions, publishing a service
// by uploading its YAML definition (lint problems shown with their line,
// column and code; a check without publishing), the registries with their
// records and history, and the data catalogue (where each attribute is
// mastered, who reads it, its personal-data class, duplicates).
//
// Who may do what:
//   - An administrator is an officer holding the role
//     platform-administrator ([Role]; agency mdai in the demo). Only
//     administrators see the services pages and may publish: publishing
//     changes what every citizen is offered, so it stays with the platform's
//     operator (the API's POST /api/v1/services needs the admin token).
//   - The registries and the data catalogue are for administrators and for
//     analysts: officers who may read at least one registry by its own read
//     rules (registry.Definition.CanRead). The list of registries and the
//     catalogue describe data and hold none; records are shown only to an
//     officer whom the registry lets read them, through the registry
//     store's audited reads, with the purpose the officer states. Being an
//     administrator grants no record reads: nobody's access is widened.
//   - Anonymous visitors are sent to sign in; citizens, systems and other
//     officers get 403.
//
// Owns: routes /admin/services, /admin/services/{id}, /admin/publish,
// /admin/registries, /admin/registries/{name}, /admin/registries/{name}/{key},
// /admin/catalogue.
//
// May import: internal/portal, internal/web, internal/apierr, internal/i18n,
// internal/identity, internal/service, internal/servicedef,
// internal/registry.
package admin
