package registry

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the registry capability's part of the database.
func Schema() pg.Schema { return pg.NewSchema("registry", migrations) }

// The registries a [Person] is composed of: the population registry holds
// the person, the registration of residence their address, whose region
// and locality names come from the KATO classifier.
const (
	PopulationRegistry = "population"
	AddressRegistry    = "addresses"
	katoClassifier     = "kato"
)

// Person is a person as the population and addresses registries hold
// them.
type Person struct {
	IIN        iin.IIN
	LastName   string
	FirstName  string
	Patronymic string
	BirthDate  time.Time
	Sex        string // "male", "female" or "unknown"
	Address    *Address
}

// FullName is "Last First Patronymic", as Kazakh documents write it.
func (p Person) FullName() string {
	return strings.TrimSpace(strings.Join([]string{p.LastName, p.FirstName, p.Patronymic}, " "))
}

// Address is a registered (permanent) address.
type Address struct {
	KATO     string    `json:"kato"`
	Region   i18n.Text `json:"region"`
	Locality i18n.Text `json:"locality"`
	Street   string    `json:"street"`
	House    string    `json:"house"`
	Flat     string    `json:"flat,omitempty"`
}

// Line renders the address on one line in lang.
func (a Address) Line(lang i18n.Lang) string {
	parts := []string{a.Region.In(lang)}
	if loc := a.Locality.In(lang); loc != "" && loc != parts[0] {
		parts = append(parts, loc)
	}
	parts = append(parts, a.Street, i18n.T(lang, "address.house", a.House))
	if a.Flat != "" {
		parts = append(parts, i18n.T(lang, "address.flat", a.Flat))
	}
	return strings.Join(parts, ", ")
}

// Access says who reads a person's data and why; it goes to the audit trail.
type Access struct {
	Actor     string // "system:process", "citizen:<IIN>", ...
	Purpose   string // the service or legal basis
	Object    string // what the read is for: "application:<id>"
	RequestID string
}

// ErrAccessUnexplained means a read lacked an actor or a purpose.
var ErrAccessUnexplained = errors.New("registry read without actor and purpose")

// readPerson reads the current versions of a person's population and
// addresses records in one round trip, and writes the two audit events of
// the reads in the same statement: the events do not depend on what is
// found, and a data-modifying WITH runs whether or not the query reads it.
// Each record's newest version is one backward probe of the primary key.
const readPerson = `WITH audited AS (
	` + audit.Insert + `VALUES ($2, $3, 'registry.` + PopulationRegistry + `.read', $1, $4, $6, $7),
	       ($2, $3, 'registry.` + AddressRegistry + `.read', $1, $5, $6, $7)
)
SELECT p.op, p.data, a.op, a.data FROM (VALUES (1)) AS one (x)
LEFT JOIN LATERAL (SELECT op, data FROM registry_record_version
	WHERE registry = '` + PopulationRegistry + `' AND key = $1 ORDER BY version DESC LIMIT 1) p ON true
LEFT JOIN LATERAL (SELECT op, data FROM registry_record_version
	WHERE registry = '` + AddressRegistry + `' AND key = $1 ORDER BY version DESC LIMIT 1) a ON true`

// personData and addressData are the attributes of the population and
// addresses records that make a [Person].
type personData struct {
	LastName   string `json:"last_name"`
	FirstName  string `json:"first_name"`
	Patronymic string `json:"patronymic"`
	BirthDate  string `json:"birth_date"`
	Sex        string `json:"sex"`
}

type addressData struct {
	KATO   string `json:"kato"`
	Street string `json:"street"`
	House  string `json:"house"`
	Flat   string `json:"flat"`
}

// Person reads a person within tx: their current population record and,
// if they have one, their current registration of residence, with the
// region and locality of its KATO code in three languages. Each of the two
// record reads is audited in tx as [Store.Get] audits it, found or not.
// found is false when the population registry has no such person or has
// cancelled their record; a cancelled registration is no address.
func (s *Store) Person(ctx context.Context, tx pgx.Tx, id iin.IIN, a Access) (person Person, found bool, err error) {
	if a.Actor == "" || a.Purpose == "" {
		return Person{}, false, ErrAccessUnexplained
	}
	s.mu.RLock()
	_, havePersons := s.defs[PopulationRegistry]
	_, haveAddresses := s.defs[AddressRegistry]
	kato := s.classifiers[katoClassifier]
	s.mu.RUnlock()
	if !havePersons || !haveAddresses {
		return Person{}, false, ErrUnknownRegistry
	}
	key := id.String()
	var personOp, addressOp *string
	var personJSON, addressJSON []byte
	err = tx.QueryRow(ctx, readPerson, key, s.clock.Now(), a.Actor,
		objectOf(a, PopulationRegistry, key), objectOf(a, AddressRegistry, key), a.Purpose, a.RequestID).
		Scan(&personOp, &personJSON, &addressOp, &addressJSON)
	if err != nil {
		return Person{}, false, fmt.Errorf("read person: %w", err)
	}
	if personOp == nil || *personOp == OpCancel {
		return Person{}, false, nil
	}
	var pd personData
	if err := json.Unmarshal(personJSON, &pd); err != nil {
		return Person{}, false, fmt.Errorf("read person %s: %w", key, err)
	}
	birth, err := time.Parse(time.DateOnly, pd.BirthDate)
	if err != nil {
		return Person{}, false, fmt.Errorf("read person %s: birth_date: %w", key, err)
	}
	person = Person{IIN: id, LastName: pd.LastName, FirstName: pd.FirstName, Patronymic: pd.Patronymic, BirthDate: birth, Sex: pd.Sex}
	if addressOp != nil && *addressOp != OpCancel {
		var ad addressData
		if err := json.Unmarshal(addressJSON, &ad); err != nil {
			return Person{}, false, fmt.Errorf("read address of %s: %w", key, err)
		}
		region, locality := placeNames(kato, ad.KATO)
		person.Address = &Address{KATO: ad.KATO, Region: region, Locality: locality, Street: ad.Street, House: ad.House, Flat: ad.Flat}
	}
	return person, true, nil
}

// placeNames are the names of a KATO code's region (its topmost ancestor:
// a region or a city of republican significance) and of the place itself.
func placeNames(kato *Classifier, code string) (region, locality i18n.Text) {
	if kato == nil {
		return i18n.Text{}, i18n.Text{}
	}
	c, ok := kato.Lookup(code)
	if !ok {
		return i18n.Text{}, i18n.Text{}
	}
	top := c
	// Bounded: a classifier with a cycle of parents must not hang a read.
	for range 8 {
		p, ok := kato.Lookup(top.Parent)
		if top.Parent == "" || !ok {
			break
		}
		top = p
	}
	return top.Title, c.Title
}

// Records are p's records in the population registry and, when p has an
// address, in the addresses registry (nil otherwise), registered on
// registeredOn. The address's region and locality names are not written:
// the KATO classifier holds them.
func (p Person) Records(registeredOn time.Time) (person, address map[string]any) {
	sex := p.Sex
	if sex == "" {
		sex = "unknown"
	}
	person = map[string]any{"iin": p.IIN.String(), "last_name": p.LastName, "first_name": p.FirstName,
		"birth_date": p.BirthDate.Format(time.DateOnly), "sex": sex}
	if p.Patronymic != "" {
		person["patronymic"] = p.Patronymic
	}
	if p.Address == nil {
		return person, nil
	}
	person["address_kato"] = p.Address.KATO
	address = map[string]any{"iin": p.IIN.String(), "kato": p.Address.KATO, "street": p.Address.Street, "house": p.Address.House,
		"registered_on": registeredOn.Format(time.DateOnly)}
	if p.Address.Flat != "" {
		address["flat"] = p.Address.Flat
	}
	return person, address
}

// ImportPersons writes persons into the population and addresses
// registries through [Store.Import] (validated, COPY, first versions), the
// addresses registered on the import's ValidFrom. A rejected row fails the
// call, naming the row, field and reason; the rows before it stay written.
func (s *Store) ImportPersons(ctx context.Context, persons []Person, o ImportOptions) error {
	valid := o.ValidFrom
	if valid.IsZero() {
		valid = s.clock.Now()
	}
	people := make([]map[string]any, 0, len(persons))
	var addresses []map[string]any
	for _, p := range persons {
		person, address := p.Records(valid)
		people = append(people, person)
		if address != nil {
			addresses = append(addresses, address)
		}
	}
	for _, load := range []struct {
		registry string
		records  []map[string]any
	}{{PopulationRegistry, people}, {AddressRegistry, addresses}} {
		if len(load.records) == 0 {
			continue
		}
		rep, err := s.Import(ctx, load.registry, Rows(load.records), o)
		if err != nil {
			return fmt.Errorf("import %s: %w", load.registry, err)
		}
		if rep.Rejected > 0 {
			r := rep.Rejections[0]
			return fmt.Errorf("import %s: %d rows rejected, the first row %d (%s) at %s: %s", load.registry, rep.Rejected, r.Row, r.Key, r.Field, r.Code)
		}
	}
	return nil
}

// Rows is a [RowReader] over records built in memory, numbered from 1.
func Rows(records []map[string]any) RowReader { return &sliceRows{recs: records} }

type sliceRows struct {
	recs []map[string]any
	i    int
}

func (s *sliceRows) Next() (Row, error) {
	if s.i >= len(s.recs) {
		return Row{}, io.EOF
	}
	s.i++
	return Row{N: s.i, Data: s.recs[s.i-1]}, nil
}
