package registry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/registry"
)

// readPerson reads id through Store.Person in a transaction of its own.
func readPerson(t *testing.T, s *registry.Store, id string, a registry.Access) (registry.Person, bool, error) {
	t.Helper()
	var p registry.Person
	var found bool
	err := pgx.BeginFunc(context.Background(), s.Pool(), func(tx pgx.Tx) (err error) {
		p, found, err = s.Person(context.Background(), tx, iin.IIN(id), a)
		return err
	})
	return p, found, err
}

// readAudit lists the audit events about subject as "action object actor
// purpose request", oldest first.
func readAudit(t *testing.T, s *registry.Store, subject string) []string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT action, object, actor, purpose, request_id FROM audit_event WHERE subject_iin = $1 ORDER BY id`, subject)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var action, object, actor, purpose, req string
		if err := rows.Scan(&action, &object, &actor, &purpose, &req); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join([]string{action, object, actor, purpose, req}, " | "))
	}
	return out
}

// TestPersonComposesBothRegistries: a person is their population record
// with the address of their registration of residence, whose region and
// locality are the KATO classifier's names, in the record shape services
// read; each record read is audited like Store.Get, found or not.
func TestPersonComposesBothRegistries(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	ids := testIINs(4)
	withAddress, homeless, city, unknown := ids[0], ids[1], ids[2], ids[3]
	birth := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.ImportPersons(ctx, []registry.Person{
		{IIN: iin.IIN(withAddress), LastName: "Сейітов", FirstName: "Асан", Patronymic: "Ерланұлы", BirthDate: birth, Sex: "male",
			Address: &registry.Address{KATO: "711110000", Street: "Қабанбай батыр даңғылы", House: "12", Flat: "45"}},
		{IIN: iin.IIN(homeless), LastName: "Әлиева", FirstName: "Дана", BirthDate: birth, Sex: "female"},
		{IIN: iin.IIN(city), LastName: "Ким", FirstName: "Ольга", BirthDate: birth, Sex: "female",
			// A top-level code: the city is its own region.
			Address: &registry.Address{KATO: "750000000", Street: "Абай даңғылы", House: "1"}},
	}, registry.ImportOptions{Actor: "system:test", Basis: "test"}); err != nil {
		t.Fatal(err)
	}
	access := registry.Access{Actor: "system:process", Purpose: "service:address-certificate", Object: "application:1", RequestID: "req-7"}

	p, found, err := readPerson(t, s, withAddress, access)
	if err != nil || !found {
		t.Fatalf("Person(%s) = found %v, %v", withAddress, found, err)
	}
	want := registry.Person{IIN: iin.IIN(withAddress), LastName: "Сейітов", FirstName: "Асан", Patronymic: "Ерланұлы", BirthDate: birth, Sex: "male",
		Address: &registry.Address{KATO: "711110000",
			Region:   i18n.Text{KK: "Астана қаласы", RU: "город Астана", EN: "Astana City"},
			Locality: i18n.Text{KK: "Алматы ауданы", RU: "район Алматы", EN: "Almaty District"},
			Street:   "Қабанбай батыр даңғылы", House: "12", Flat: "45"}}
	if got, w := fmt.Sprint(p.Record()), fmt.Sprint(want.Record()); got != w {
		t.Errorf("person = %s\nwant %s", got, w)
	}
	if got, w := p.Address.Line(i18n.EN), "Astana City, Almaty District, Қабанбай батыр даңғылы, "+i18n.T(i18n.EN, "address.house", "12")+", "+i18n.T(i18n.EN, "address.flat", "45"); got != w {
		t.Errorf("address line = %q; want %q", got, w)
	}
	if got, w := fmt.Sprint(readAudit(t, s, withAddress)), fmt.Sprint([]string{
		"registry.population.read | registry:population/" + withAddress + " for application:1 | system:process | service:address-certificate | req-7",
		"registry.addresses.read | registry:addresses/" + withAddress + " for application:1 | system:process | service:address-certificate | req-7",
	}); got != w {
		t.Errorf("audit = %s\nwant %s", got, w)
	}

	p, found, err = readPerson(t, s, homeless, access)
	if err != nil || !found || p.Address != nil || p.FullName() != "Әлиева Дана" {
		t.Errorf("Person(without address) = %+v, %v, %v; want found without address", p, found, err)
	}
	if n := len(readAudit(t, s, homeless)); n != 2 {
		t.Errorf("reading a person without address wrote %d audit events; want 2", n)
	}

	p, found, err = readPerson(t, s, city, access)
	if err != nil || !found || p.Address == nil || p.Address.Region.EN != "Almaty City" || p.Address.Locality.EN != "Almaty City" {
		t.Errorf("Person(top-level KATO) = %+v, %v, %v", p.Address, found, err)
	}

	// Nobody: not found, and the attempt is in the trail all the same.
	if _, found, err := readPerson(t, s, unknown, access); err != nil || found {
		t.Errorf("Person(unknown) = found %v, %v; want not found", found, err)
	}
	if n := len(readAudit(t, s, unknown)); n != 2 {
		t.Errorf("reading an unknown person wrote %d audit events; want 2", n)
	}

	// A read must say who reads and why; it leaves no data and no event.
	if _, _, err := readPerson(t, s, withAddress, registry.Access{Actor: "system:process"}); !errors.Is(err, registry.ErrAccessUnexplained) {
		t.Errorf("Person without a purpose: %v; want ErrAccessUnexplained", err)
	}
	if n := len(readAudit(t, s, withAddress)); n != 2 {
		t.Errorf("an unexplained read wrote audit events: %d in all, want 2", n)
	}
}

// TestPersonReadsTheCurrentVersions: a person reads as their newest
// versions say: a move is the new address, a cancelled registration no
// address, a cancelled population record nobody.
func TestPersonReadsTheCurrentVersions(t *testing.T) {
	ctx := context.Background()
	s, clk := newStore(t)
	id := testIINs(1)[0]
	if err := s.ImportPersons(ctx, []registry.Person{{IIN: iin.IIN(id), LastName: "Сейітов", FirstName: "Асан",
		BirthDate: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), Sex: "male",
		Address: &registry.Address{KATO: "711110000", Street: "Абай даңғылы", House: "1"}}},
		registry.ImportOptions{Actor: "system:test", Basis: "test"}); err != nil {
		t.Fatal(err)
	}
	change := func(reg, op string, data map[string]any) {
		t.Helper()
		clk.Advance(time.Hour)
		if _, err := s.ApplyNow(ctx, registry.Change{Registry: reg, Key: id, Op: op, Data: data, Actor: "officer:mia-1", Basis: "test"}); err != nil {
			t.Fatalf("%s %s: %v", op, reg, err)
		}
	}
	change("addresses", registry.OpUpdate, map[string]any{"iin": id, "kato": "351010000", "street": "Бұқар жырау даңғылы", "house": "7", "registered_on": "2026-03-01"})
	p, found, err := readPerson(t, s, id, reader)
	if err != nil || !found || p.Address == nil || p.Address.KATO != "351010000" || p.Address.Region.RU != "Карагандинская область" ||
		p.Address.Locality.RU != "Караганда" || p.Address.Street != "Бұқар жырау даңғылы" || p.Address.Flat != "" {
		t.Errorf("after a move: %+v, %v, %v", p.Address, found, err)
	}
	change("addresses", registry.OpCancel, nil)
	if p, found, err := readPerson(t, s, id, reader); err != nil || !found || p.Address != nil {
		t.Errorf("after the registration was cancelled: %+v, %v, %v; want found without address", p.Address, found, err)
	}
	change("population", registry.OpCancel, nil)
	if _, found, err := readPerson(t, s, id, reader); err != nil || found {
		t.Errorf("after the person's record was cancelled: found %v, %v; want not found", found, err)
	}
}

// TestImportPersonsNamesTheRejectedRow: a person the registries refuse
// fails the import with the row, field and reason.
func TestImportPersonsNamesTheRejectedRow(t *testing.T) {
	s, _ := newStore(t)
	id := testIINs(1)[0]
	err := s.ImportPersons(context.Background(), []registry.Person{{IIN: iin.IIN(id), LastName: "Сейітов", FirstName: "Асан",
		BirthDate: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), Sex: "male",
		Address: &registry.Address{KATO: "999999999", Street: "Абай даңғылы", House: "1"}}},
		registry.ImportOptions{Actor: "system:test", Basis: "test"})
	if err == nil || !strings.Contains(err.Error(), "population") || !strings.Contains(err.Error(), "/address_kato") {
		t.Errorf("ImportPersons(unknown KATO code) = %v; want the population row's /address_kato named", err)
	}
}
