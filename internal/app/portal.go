package app

import (
	"github.com/ortaq/ortaq/internal/portal"
	"github.com/ortaq/ortaq/internal/portal/account"
	"github.com/ortaq/ortaq/internal/portal/admin"
	"github.com/ortaq/ortaq/internal/portal/citizen"
	"github.com/ortaq/ortaq/internal/portal/officer"
)

// mountPortal puts the web portal's areas on the platform's server: the
// core pages (sign-in, services, verification) and, each in its own
// package, the citizen's, the officer's and the administrator's pages.
func (p *Platform) mountPortal(externalLogin bool) {
	site := portal.NewSite(p.Web)
	portal.New(portal.Deps{Logins: p.Logins, Sessions: p.Sessions, ExternalLogin: externalLogin}).Routes(site)
	citizen.New(citizen.Deps{Services: p.Services, Agencies: p.Agencies, Engine: p.Engine, Registries: p.Registries,
		Pool: p.pool, CanRead: p.CanRead, Now: p.clock.Now}).Routes(site)
	account.New(account.Deps{Documents: p.Documents, Consents: p.Consents, Notify: p.Notify, Registries: p.Registries,
		AgencyName: p.Agencies.Name, CanRead: p.CanRead}).Routes(site)
	officer.New(p.Engine, p.Services).Routes(site)
	admin.New(admin.Deps{Services: p.Services, Agencies: p.Agencies, Registries: p.Registries}).Routes(site)
}
