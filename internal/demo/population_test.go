package demo

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/ortaq/ortaq/internal/iin"
)

func TestPopulation(t *testing.T) {
	const n = 10000
	people := Population(n, 1)
	if len(people) != n {
		t.Fatalf("len(Population(%d, 1)) = %d; want %d", n, len(people), n)
	}

	seen := make(map[iin.IIN]int, n)
	regions := make(map[string]bool)
	noAddress, russian, noPatronymic := 0, 0, 0
	minDate := time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC)
	maxDate := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	for i, c := range people {
		parsed, err := iin.Parse(string(c.IIN))
		if err != nil || parsed != c.IIN {
			t.Fatalf("citizen %d: iin.Parse(%q) = %q, %v", i, c.IIN, parsed, err)
		}
		if j, dup := seen[c.IIN]; dup {
			t.Fatalf("citizens %d and %d share IIN %s", j, i, c.IIN)
		}
		seen[c.IIN] = i
		if serial := c.IIN.String()[7:11]; serial < "9000" {
			t.Errorf("citizen %d: IIN %s has serial %s; want 9000 or more", i, c.IIN, serial)
		}

		if c.BirthDate.Before(minDate) || c.BirthDate.After(maxDate) {
			t.Errorf("citizen %d: BirthDate %v outside 1940-2025", i, c.BirthDate)
		}
		if c.BirthDate.Location() != time.UTC || !c.BirthDate.Equal(c.BirthDate.Truncate(24*time.Hour)) {
			t.Errorf("citizen %d: BirthDate %v is not midnight UTC", i, c.BirthDate)
		}
		if d, ok := c.IIN.BirthDate(); !ok || !d.Equal(c.BirthDate) {
			t.Errorf("citizen %d: IIN %s gives birth date %v, %v; want %v", i, c.IIN, d, ok, c.BirthDate)
		}
		if c.Sex != iin.SexMale && c.Sex != iin.SexFemale {
			t.Errorf("citizen %d: Sex = %v", i, c.Sex)
		}
		if got := c.IIN.Sex(); got != c.Sex {
			t.Errorf("citizen %d: IIN %s gives sex %v; want %v", i, c.IIN, got, c.Sex)
		}

		if c.LastName == "" || c.FirstName == "" {
			t.Errorf("citizen %d: empty name %q %q", i, c.LastName, c.FirstName)
		}
		if !cyrillic(c.LastName + c.FirstName + c.Patronymic) {
			t.Errorf("citizen %d: name %q %q %q is not all Cyrillic", i, c.LastName, c.FirstName, c.Patronymic)
		}
		if c.Patronymic == "" {
			noPatronymic++
		}
		if p := c.Patronymic; p != "" {
			male := strings.HasSuffix(p, "ұлы") || strings.HasSuffix(p, "вич")
			female := strings.HasSuffix(p, "қызы") || strings.HasSuffix(p, "вна")
			if male != (c.Sex == iin.SexMale) || female != (c.Sex == iin.SexFemale) {
				t.Errorf("citizen %d: patronymic %q does not fit sex %v", i, p, c.Sex)
			}
		}
		if c.Sex == iin.SexFemale && !(strings.HasSuffix(c.LastName, "а") || strings.HasSuffix(c.LastName, "қызы")) {
			t.Errorf("citizen %d: female surname %q", i, c.LastName)
		}
		if c.Sex == iin.SexMale && (strings.HasSuffix(c.LastName, "а") || strings.HasSuffix(c.LastName, "қызы")) {
			t.Errorf("citizen %d: male surname %q", i, c.LastName)
		}
		if isRussianSurname(c.LastName) {
			russian++
		}

		if !HasAddress(c) {
			noAddress++
			if c.Address != (Address{}) {
				t.Errorf("citizen %d: no KATO but address %+v; want the zero value", i, c.Address)
			}
			continue
		}
		a := c.Address
		if len(a.KATO) != 9 || strings.Trim(a.KATO, "0123456789") != "" {
			t.Errorf("citizen %d: KATO %q is not 9 digits", i, a.KATO)
		}
		for _, txt := range []Text{a.Region, a.Locality} {
			if txt.KK == "" || txt.RU == "" || txt.EN == "" {
				t.Errorf("citizen %d: address text %+v has an empty language", i, txt)
			}
		}
		if a.Street == "" || a.House == "" {
			t.Errorf("citizen %d: address %+v lacks street or house", i, a)
		}
		regions[a.KATO[:2]] = true
	}

	if noAddress < n/100 || noAddress > n*5/100 {
		t.Errorf("%d of %d citizens without address; want 1%%-5%%", noAddress, n)
	}
	if russian < n*15/100 || russian > n*35/100 {
		t.Errorf("%d of %d citizens with Russian surnames; want about a quarter", russian, n)
	}
	if noPatronymic == 0 || noPatronymic > n/10 {
		t.Errorf("%d of %d citizens without patronymic; want a few", noPatronymic, n)
	}
	if len(regions) < 8 {
		t.Errorf("addresses in %d regions; want at least 8", len(regions))
	}
}

func TestPopulationDeterministic(t *testing.T) {
	a, b := Population(2000, 42), Population(2000, 42)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("Population(2000, 42) differs between two calls")
	}
	if prefix := Population(100, 42); !reflect.DeepEqual(prefix, a[:100]) {
		t.Errorf("Population(100, 42) is not the first 100 of Population(2000, 42)")
	}
	if c := Population(2000, 43); reflect.DeepEqual(a, c) {
		t.Errorf("Population(2000, 42) and Population(2000, 43) are equal; want different seeds to differ")
	}
}

func TestPopulationNoAddressPlaces(t *testing.T) {
	people := Population(100, 7)
	for i, c := range people {
		want := i%33 != 5
		if got := HasAddress(c); got != want {
			t.Errorf("HasAddress(Population(100, 7)[%d]) = %v; want %v", i, got, want)
		}
	}
}

func TestPopulationEmpty(t *testing.T) {
	for _, n := range []int{0, -1} {
		if got := Population(n, 1); len(got) != 0 {
			t.Errorf("len(Population(%d, 1)) = %d; want 0", n, len(got))
		}
	}
}

func TestNameLists(t *testing.T) {
	tests := []struct {
		name string
		list []string
		min  int
	}{
		{"kazakhMale", kazakhMale, 40},
		{"kazakhFemale", kazakhFemale, 40},
		{"kazakhSurnames", kazakhSurnames, 40},
		{"russianFemale", russianFemale, 20},
		{"russianSurnames", russianSurnames, 20},
	}
	for _, tt := range tests {
		if len(tt.list) < tt.min {
			t.Errorf("len(%s) = %d; want at least %d", tt.name, len(tt.list), tt.min)
		}
		seen := make(map[string]bool)
		for _, s := range tt.list {
			if seen[s] {
				t.Errorf("%s lists %q twice", tt.name, s)
			}
			seen[s] = true
		}
	}
	if len(russianMale) < 20 {
		t.Errorf("len(russianMale) = %d; want at least 20", len(russianMale))
	}
	// Male Kazakh names end in a hard consonant, so "+ович" is right.
	for _, s := range kazakhMale {
		r := []rune(s)
		if !strings.ContainsRune("бгғдзкқлмнңпрстфх", r[len(r)-1]) {
			t.Errorf("Kazakh male name %q does not end in a hard consonant", s)
		}
	}
	// Every surname has a form that feminine knows.
	for _, s := range append(append([]string{}, kazakhSurnames...), russianSurnames...) {
		if !strings.HasSuffix(s, "ов") && !strings.HasSuffix(s, "ев") && !strings.HasSuffix(s, "ёв") &&
			!strings.HasSuffix(s, "ин") && !strings.HasSuffix(s, "ұлы") {
			t.Errorf("surname %q has no known female form", s)
		}
	}
	for _, tt := range []struct{ male, female string }{
		{"Сейітов", "Сейітова"},
		{"Қалиев", "Қалиева"},
		{"Ғабдуллин", "Ғабдуллина"},
		{"Асқарұлы", "Асқарқызы"},
	} {
		if got := feminine(tt.male); got != tt.female {
			t.Errorf("feminine(%q) = %q; want %q", tt.male, got, tt.female)
		}
	}
}

func TestLocalities(t *testing.T) {
	seen := make(map[string]bool)
	for _, l := range localities {
		if seen[l.kato] {
			t.Errorf("KATO %s listed twice", l.kato)
		}
		seen[l.kato] = true
		if _, ok := regions[l.kato[:2]]; !ok {
			t.Errorf("KATO %s: no region %s", l.kato, l.kato[:2])
		}
		if l.weight <= 0 {
			t.Errorf("KATO %s: weight %d", l.kato, l.weight)
		}
	}
}

func cyrillic(s string) bool {
	for _, r := range s {
		if !unicode.Is(unicode.Cyrillic, r) && r != '-' {
			return false
		}
	}
	return true
}

func isRussianSurname(s string) bool {
	for _, r := range russianSurnames {
		if s == r || s == feminine(r) {
			return true
		}
	}
	return false
}
