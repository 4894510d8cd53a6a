package e2e_test

import (
	"testing"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/portal/portaltest"
)

func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }

// TestPublicPagesAreAccessible: the pages anyone may open pass axe and
// the weight budget.
func TestPublicPagesAreAccessible(t *testing.T) {
	r := apptest.Start(t, 2, 50)
	b := newBrowser(t, r)
	for _, path := range []string{"/", "/login", "/verify"} {
		b.visit(path)
	}
	phone := portaltest.New(t, r).Citizen(r.Sample.WithAddress.String())
	b.signIn(r.Sample.WithAddress.String(), portaltest.Password, phone, false)
	t.Log(b.visited)
}
