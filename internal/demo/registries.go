package demo

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/registry"
)

// RegistryPeople is how many of the synthetic citizens (the first ones)
// all the demo registries describe (every citizen is in the population and
// addresses registries): enough to try every registry, few enough to keep
// `ortaq serve --demo` starting in about a second.
const RegistryPeople = 2000

// demoBasis is the legal basis written on the demo's records.
const demoBasis = "demo data (synthetic)"

// registriesAsOf is the day the demo registries describe.
var registriesAsOf = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DemoRegistries are the records of the demo registries for citizens,
// derived only from them: family links (parents, children, spouses),
// civil-status acts, registered addresses, identity documents, legal
// entities, individual entrepreneurs, criminal records, kindergarten
// places. Changes are the versions written after the first load, to show
// history (marriages, deaths).
type DemoRegistries struct {
	Records map[string][]map[string]any
	Changes []registry.Change
}

// BuildRegistries derives the demo registries' records from citizens.
func BuildRegistries(citizens []Citizen) DemoRegistries {
	now := registriesAsOf
	out := DemoRegistries{Records: map[string][]map[string]any{}}
	add := func(reg string, rec map[string]any) { out.Records[reg] = append(out.Records[reg], rec) }
	date := func(t time.Time) string { return t.Format(time.DateOnly) }

	// Family links: parents 20-35 years older, chosen deterministically.
	byYear := map[[2]int][]int{} // (year, sex) -> indexes
	for i, c := range citizens {
		k := [2]int{c.BirthDate.Year(), int(c.Sex)}
		byYear[k] = append(byYear[k], i)
	}
	pick := func(i, year int, sex iin.Sex) int {
		for d := 0; d < 16; d++ {
			y := year - 20 - (i+d)%16
			if cands := byYear[[2]int{y, int(sex)}]; len(cands) > 0 {
				return cands[(i*7919)%len(cands)]
			}
		}
		return -1
	}
	mother := make([]int, len(citizens))
	father := make([]int, len(citizens))
	spouse := make([]int, len(citizens))
	children := make([][]string, len(citizens))
	for i := range spouse {
		spouse[i] = -1
	}
	for i, c := range citizens {
		mother[i], father[i] = -1, -1
		if c.BirthDate.Year() < 1975 {
			continue
		}
		mother[i], father[i] = pick(i, c.BirthDate.Year(), iin.SexFemale), pick(i+1, c.BirthDate.Year(), iin.SexMale)
		for _, p := range []int{mother[i], father[i]} {
			if p >= 0 {
				children[p] = append(children[p], c.IIN.String())
			}
		}
		if m, f := mother[i], father[i]; m >= 0 && f >= 0 && spouse[m] < 0 && spouse[f] < 0 {
			spouse[m], spouse[f] = f, m
		}
	}

	// The first ten couples marry in 2025, after the registries' first
	// load: their records get a later version.
	recent := map[int]bool{}
	for i, c := range citizens {
		if len(recent) < 20 && spouse[i] >= 0 && c.Sex == iin.SexMale {
			recent[i], recent[spouse[i]] = true, true
		}
	}
	acts := 0
	actID := func(kind string, t time.Time) string {
		acts++
		return fmt.Sprintf("%s-%04d-%06d", kind, t.Year(), acts)
	}
	married := 0
	for i, c := range citizens {
		rec, address := personRecords(i, c, now)
		birth := map[string]any{"act_id": actID("B", c.BirthDate), "act_type": "birth", "act_date": date(c.BirthDate), "person_iin": c.IIN.String()}
		if m := mother[i]; m >= 0 {
			rec["mother_iin"] = citizens[m].IIN.String()
			birth["mother_iin"] = rec["mother_iin"]
		}
		if f := father[i]; f >= 0 {
			rec["father_iin"] = citizens[f].IIN.String()
			birth["father_iin"] = rec["father_iin"]
		}
		if len(children[i]) > 0 {
			kids := make([]any, len(children[i]))
			for j, k := range children[i] {
				kids[j] = k
			}
			rec["children_iins"] = kids
		}
		if HasAddress(c) {
			birth["office_kato"] = c.Address.KATO
		}
		add("civil_acts", birth)
		if s := spouse[i]; s >= 0 && c.Sex == iin.SexMale {
			// The marriage: an act, and the spouses' records change. The
			// first marriages are later versions of the records, to show
			// history; the others are loaded as they stand.
			later := c.BirthDate
			if citizens[s].BirthDate.After(later) {
				later = citizens[s].BirthDate
			}
			wedding := later.AddDate(22, 0, 0)
			if wedding.After(now) || recent[i] {
				wedding = now.AddDate(0, -1-married%6, 0)
			}
			add("civil_acts", map[string]any{"act_id": actID("M", wedding), "act_type": "marriage", "act_date": date(wedding),
				"person_iin": c.IIN.String(), "spouse_iin": citizens[s].IIN.String()})
			married++
			if recent[i] {
				for _, who := range []int{i, s} {
					out.Changes = append(out.Changes, registry.Change{Registry: "population", Key: citizens[who].IIN.String(), Op: registry.OpUpdate,
						ValidFrom: wedding, Basis: "Code on marriage and family, art. 192", ApplicationID: fmt.Sprintf("M-%04d-%06d", wedding.Year(), acts),
						Reason: "marriage registered"})
				}
			}
		}
		if s := spouse[i]; s >= 0 && !recent[i] {
			rec["spouse_iin"] = citizens[s].IIN.String()
		}
		if c.BirthDate.Year() < 1950 && i%25 == 0 {
			death := now.AddDate(0, -1-(i%11), 0)
			add("civil_acts", map[string]any{"act_id": actID("D", death), "act_type": "death", "act_date": date(death), "person_iin": c.IIN.String()})
			out.Changes = append(out.Changes, registry.Change{Registry: "population", Key: c.IIN.String(), Op: registry.OpUpdate,
				ValidFrom: death, Basis: "Code on marriage and family, art. 200", ApplicationID: fmt.Sprintf("D-%04d-%06d", death.Year(), acts),
				Reason: "death registered"})
		}
		add("population", rec)

		adult := c.BirthDate.AddDate(18, 0, 0).Before(now)
		if address != nil {
			add("addresses", address)
		}
		if c.BirthDate.AddDate(16, 0, 0).Before(now) {
			issued := now.AddDate(-(i % 9), -(i % 12), 0)
			add("identity_documents", map[string]any{"number": fmt.Sprintf("%09d", 40000000+i), "holder_iin": c.IIN.String(), "doc_type": "id_card",
				"issued_on": date(issued), "expires_on": date(issued.AddDate(10, 0, 0)), "status": "valid"})
		}
		if adult && i%40 == 7 {
			ie := map[string]any{"iin": c.IIN.String(), "trade_name": "ИП " + c.LastName, "regime": []string{"simplified", "patent", "general", "retail_tax"}[i%4],
				"registered_on": date(now.AddDate(-(i % 15), -(i % 7), 0))}
			if HasAddress(c) {
				ie["address_kato"] = c.Address.KATO
			}
			add("individual_entrepreneurs", ie)
		}
		if adult && i%97 == 11 {
			add("criminal_records", map[string]any{"record_id": fmt.Sprintf("CR-%08d", i), "person_iin": c.IIN.String(),
				"article": []string{"188 part 2", "190 part 1", "345", "296"}[i%4], "convicted_on": date(c.BirthDate.AddDate(25, 0, 0)), "expunged": i%2 == 0})
		}
	}
	// Legal entities directed by some adults.
	forms := []string{"too", "ao", "too", "npo", "too"}
	names := []string{"Дала Тех", "Алтын Бидай", "Көктем Құрылыс", "Нұр Медиа", "Жібек Жолы Логистика", "Астана Софт", "Шаңырақ", "Бәйтерек Агро"}
	n := 0
	for i, c := range citizens {
		if n >= 40 || !c.BirthDate.AddDate(25, 0, 0).Before(now) || i%13 != 3 || !HasAddress(c) {
			continue
		}
		reg := time.Date(2005+n%20, time.Month(1+n%12), 1+n%28, 0, 0, 0, 0, time.UTC)
		add("legal_entities", map[string]any{"bin": mustBIN(reg, 1000+n).String(), "name": fmt.Sprintf("«%s» %d", names[n%len(names)], n+1),
			"legal_form": forms[n%len(forms)], "registered_on": date(reg), "kato": c.Address.KATO, "director_iin": c.IIN.String()})
		n++
	}
	// Kindergarten places: 6 kindergartens of 12 places; preschool children
	// take some.
	var kids []Citizen
	for _, c := range citizens {
		if age := now.Sub(c.BirthDate).Hours() / 24 / 365.25; age >= 1 && age < 6 && HasAddress(c) {
			kids = append(kids, c)
		}
	}
	for k := range 6 {
		kato := []string{"711110000", "711210000", "751110000", "751410000", "791110000", "351010000"}[k]
		for p := range 12 {
			place := map[string]any{"place_id": fmt.Sprintf("KG-%04d-%03d", k+1, p+1), "kindergarten": fmt.Sprintf("Балабақша №%d", 10+k),
				"kato": kato, "age_group": 1 + p%6, "status": "free"}
			if j := k*12 + p; j < len(kids) && p%3 != 2 {
				place["status"], place["child_iin"] = "taken", kids[j].IIN.String()
			}
			add("kindergarten_places", place)
		}
	}
	// The changes carry the full new record.
	current := map[string]map[string]any{}
	for _, r := range out.Records["population"] {
		current[r["iin"].(string)] = r
	}
	for i, ch := range out.Changes {
		base := current[ch.Key]
		next := make(map[string]any, len(base)+1)
		for k, v := range base {
			next[k] = v
		}
		if ch.Reason == "death registered" {
			next["dead"] = true
		} else {
			for j, c := range citizens {
				if c.IIN.String() == ch.Key && spouse[j] >= 0 {
					next["spouse_iin"] = citizens[spouse[j]].IIN.String()
				}
			}
		}
		out.Changes[i].Data = next
		current[ch.Key] = next
	}
	return out
}

// personRecords are citizen i's records in the population registry
// (without family links) and the addresses registry (nil without an
// address), as of now.
func personRecords(i int, c Citizen, now time.Time) (person, address map[string]any) {
	date := func(t time.Time) string { return t.Format(time.DateOnly) }
	person = map[string]any{"iin": c.IIN.String(), "last_name": c.LastName, "first_name": c.FirstName, "birth_date": date(c.BirthDate),
		"sex": c.Sex.String(), "citizenship": "KZ"}
	if c.Patronymic != "" {
		person["patronymic"] = c.Patronymic
	}
	if !HasAddress(c) {
		return person, nil
	}
	person["address_kato"] = c.Address.KATO
	reg := c.BirthDate
	if c.BirthDate.AddDate(18, 0, 0).Before(now) {
		reg = c.BirthDate.AddDate(18, int(i%12), 0)
	}
	address = map[string]any{"iin": c.IIN.String(), "kato": c.Address.KATO, "street": c.Address.Street, "house": c.Address.House, "registered_on": date(reg)}
	if c.Address.Flat != "" {
		address["flat"] = c.Address.Flat
	}
	return person, address
}

// LoadRegistries loads the demo registries into registries that are still
// empty: every citizen into the population and addresses registries (the
// persons the engine reads), the first RegistryPeople of them into all
// (family links, acts, documents...), then the later versions (marriages,
// deaths).
func LoadRegistries(ctx context.Context, store *registry.Store, citizens []Citizen, out io.Writer) error {
	empty, err := store.Empty(ctx, registry.PopulationRegistry)
	if err != nil {
		return err
	}
	if !empty {
		return nil // loaded before
	}
	start := time.Now()
	described := citizens[:min(len(citizens), RegistryPeople)]
	demo := BuildRegistries(described)
	for i := len(described); i < len(citizens); i++ {
		person, address := personRecords(i, citizens[i], registriesAsOf)
		demo.Records[registry.PopulationRegistry] = append(demo.Records[registry.PopulationRegistry], person)
		if address != nil {
			demo.Records[registry.AddressRegistry] = append(demo.Records[registry.AddressRegistry], address)
		}
	}
	total := 0
	for _, d := range store.Definitions() {
		recs := demo.Records[d.Name]
		if len(recs) == 0 {
			continue
		}
		rep, err := store.Import(ctx, d.Name, registry.Rows(recs), registry.ImportOptions{Actor: "system:demo", Basis: demoBasis,
			ValidFrom: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			return fmt.Errorf("demo registry %s: %w", d.Name, err)
		}
		if rep.Rejected > 0 {
			r := rep.Rejections[0]
			return fmt.Errorf("demo registry %s: %d rows rejected, first row %d %s %s", d.Name, rep.Rejected, r.Row, r.Field, r.Code)
		}
		total += rep.Imported
	}
	// The later versions in one transaction: one commit, not one each.
	if err := pgx.BeginFunc(ctx, store.Pool(), func(tx pgx.Tx) error {
		for _, ch := range demo.Changes {
			ch.Actor = "system:demo"
			if _, err := store.Apply(ctx, tx, ch); err != nil {
				return fmt.Errorf("demo registry change %s %s: %w", ch.Registry, ch.Reason, err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "demo: %d records in %d registries (%d later versions) in %s\n", total, len(demo.Records), len(demo.Changes), time.Since(start).Round(time.Millisecond))
	return nil
}
