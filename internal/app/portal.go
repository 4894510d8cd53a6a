package app

import "github.com/ortaq/ortaq/internal/portal"

// mountPortal puts the web portal's areas on the platform's server: the
// core pages (sign-in, services, verification) and, each in its own
// package, the citizen's, the officer's and the administrator's pages.
func (p *Platform) mountPortal(externalLogin bool) {
	site := portal.NewSite(p.Web)
	portal.New(portal.Deps{Services: p.Services, Agencies: p.Agencies, Engine: p.Engine, Documents: p.Documents,
		Logins: p.Logins, Sessions: p.Sessions, CanRead: p.CanRead, ExternalLogin: externalLogin}).Routes(site)
}
