package demo

import (
	"fmt"
	"slices"
)

// Password is the password of every demo person's account; `ortaq serve
// --demo` prints it. Only for demonstrations: the one-time codes still go
// through the SMS adapter (the dev outbox: `ortaq notify outbox`).
const Password = "ortaq-demo-2026"

// BankClient is the demo bank's client id (client credentials; its secret
// is made anew on every start and printed).
const BankClient = "demo-bank"

// Account is one demo account: a citizen from the synthetic population, an
// officer of a demo agency with one role, or the demo bank's system.
type Account struct {
	Kind    string // citizen, officer or system
	Subject string // IIN, officer id or client id
	Name    string
	Agency  string
	Roles   []string
	Phone   string // +7XXXXXXXXXX; people only
}

// Accounts are the demo's accounts: the sample citizens of r, one officer
// per agency role (id "<agency>-<role>"), and the demo bank.
func Accounts(r Result) []Account {
	var out []Account
	for i, c := range []string{r.WithAddress.String(), r.WithoutAddress.String()} {
		if c == "" {
			continue
		}
		out = append(out, Account{Kind: "citizen", Subject: c, Name: fmt.Sprintf("Demo citizen %d", i+1), Phone: fmt.Sprintf("+7700000%04d", i+1)})
	}
	roles := Roles()
	agencies := make([]string, 0, len(roles))
	for a := range roles {
		agencies = append(agencies, a)
	}
	slices.Sort(agencies)
	n := 100
	for _, a := range agencies {
		for _, role := range roles[a] {
			n++
			out = append(out, Account{Kind: "officer", Subject: a + "-" + role, Name: "Demo " + role, Agency: a, Roles: []string{role},
				Phone: fmt.Sprintf("+7700000%04d", n)})
		}
	}
	return append(out, Account{Kind: "system", Subject: BankClient, Name: "Demo Bank", Roles: []string{"payments"}})
}
