package demo

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/ortaq/ortaq/internal/iin"
)

// Citizen is one person of the synthetic demo population. None of them is a
// real person: every IIN has a serial number of 9000 or more (digits 8-11),
// a range that marks the numbers as made up.
type Citizen struct {
	IIN iin.IIN
	// Kazakh names in Kazakh Cyrillic for about three quarters of the
	// population, Russian names for the rest. Patronymic is empty for some.
	LastName, FirstName, Patronymic string
	BirthDate                       time.Time // midnight UTC
	Sex                             iin.Sex   // SexMale or SexFemale, never SexUnknown
	Address                         Address   // zero value: no registered address; see HasAddress
}

// Address is a registered (permanent) address.
type Address struct {
	KATO     string // 9-digit KATO code of the city or city district
	Region   Text   // region, or city of republican significance
	Locality Text   // city, or district of a city
	Street   string // in Cyrillic, e.g. "Абай даңғылы", "ул. Жибек Жолы"
	House    string // e.g. "12", "7А"
	Flat     string // empty for a private house
}

// Text is a short text in Kazakh, Russian and English.
type Text struct{ KK, RU, EN string }

// noAddressEvery and noAddressAt place the citizens without a registered
// address: those at index i of the slice with i%noAddressEvery == noAddressAt,
// that is 5, 38, 71, … (about 3%), whatever the seed.
const (
	noAddressEvery = 33
	noAddressAt    = 5
)

// firstSerial is the first IIN serial number given out. kz.md §1.4 advises
// serials of 9000 and up so the numbers are obviously synthetic.
const firstSerial = 9000

// HasAddress reports whether c has a registered address. About 3% of the
// population has none, so that a demo service can refuse them ("no registered
// address"). They sit at fixed places in the slice returned by [Population]:
// indexes 5, 38, 71, … (every 33rd, starting at 5), for every seed; so
// Population(n, seed)[5] is one whenever n > 5.
func HasAddress(c Citizen) bool { return c.Address.KATO != "" }

// Population returns n synthetic citizens. The result depends only on n and
// seed: the same arguments give the same citizens, in the same order, and the
// first k citizens of Population(n, seed) do not depend on n.
//
// Every IIN is valid (built with [iin.New]) and unique within the result, and
// its date and sex digits agree with BirthDate and Sex. Birth dates lie between
// 1940-01-01 and 2025-12-31, spread roughly like the age pyramid of Kazakhstan.
// Addresses are spread over 13 cities in 13 regions, weighted roughly by
// population, with real KATO codes.
//
// Population returns nil when n <= 0. It panics when n exceeds 10,000,000,
// far beyond what a demo needs (the serial range 9000-9999 per birth date and
// sex holds about 60 million numbers).
func Population(n int, seed int64) []Citizen {
	if n <= 0 {
		return nil
	}
	if n > 10_000_000 {
		panic(fmt.Sprintf("demo.Population: n = %d, want at most 10,000,000", n))
	}
	g := generator{
		r:    rand.New(rand.NewPCG(uint64(seed), 0x6f72746171)), // "ortaq"
		next: make(map[int32]int, n),
	}
	people := make([]Citizen, n)
	for i := range people {
		c := &people[i]
		c.Sex = iin.SexMale
		if g.r.IntN(2) == 1 {
			c.Sex = iin.SexFemale
		}
		c.BirthDate, c.IIN = g.number(c.Sex)
		g.names(c)
		if i%noAddressEvery != noAddressAt {
			c.Address = g.address()
		}
	}
	return people
}

// generator holds the state of one Population call.
type generator struct {
	r *rand.Rand
	// next maps a birth day and sex (day number since 1940-01-01, times 2,
	// plus 1 for female) to the next free IIN serial for it.
	next map[int32]int
}

var (
	epoch     = time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC)
	errNoFree = errors.New("no free serial")
)

// number draws a birth date and gives it a free IIN.
func (g *generator) number(sex iin.Sex) (time.Time, iin.IIN) {
	for {
		birth := g.birthDate()
		key := int32(birth.Sub(epoch).Hours()/24) * 2
		if sex == iin.SexFemale {
			key++
		}
		n, err := g.issue(birth, sex, key)
		if err == nil {
			return birth, n
		}
		// All 1000 serials of that day are taken: draw another day.
	}
}

// issue returns the next valid IIN for the birth day and sex of key, skipping
// serials whose prefix has no control digit.
func (g *generator) issue(birth time.Time, sex iin.Sex, key int32) (iin.IIN, error) {
	serial, ok := g.next[key]
	if !ok {
		serial = firstSerial
	}
	for ; serial <= 9999; serial++ {
		n, err := iin.New(birth, sex, serial)
		if err == nil {
			g.next[key] = serial + 1
			return n, nil
		}
		if !errors.Is(err, &iin.Error{Code: "iin.checksum"}) {
			panic("demo: iin.New: " + err.Error()) // inputs are in range by construction
		}
	}
	g.next[key] = serial
	return "", errNoFree
}

// ageBands approximates the birth years of Kazakhstan's population: few born
// in the 1940s, a bulge of children born since 2000. Weights are relative.
var ageBands = []struct {
	from, to int // years, inclusive
	weight   int
}{
	{1940, 1949, 2},
	{1950, 1959, 5},
	{1960, 1969, 9},
	{1970, 1979, 11},
	{1980, 1989, 14},
	{1990, 1999, 13},
	{2000, 2009, 15},
	{2010, 2019, 21},
	{2020, 2025, 10},
}

var ageBandTotal = func() int {
	t := 0
	for _, b := range ageBands {
		t += b.weight
	}
	return t
}()

// birthDate draws a birth date at midnight UTC.
func (g *generator) birthDate() time.Time {
	w := g.r.IntN(ageBandTotal)
	for _, b := range ageBands {
		if w -= b.weight; w < 0 {
			year := b.from + g.r.IntN(b.to-b.from+1)
			start := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
			days := 365
			if time.Date(year, 12, 31, 0, 0, 0, 0, time.UTC).YearDay() == 366 {
				days = 366
			}
			return start.AddDate(0, 0, g.r.IntN(days))
		}
	}
	panic("unreachable")
}

// names fills in the names of c according to c.Sex.
func (g *generator) names(c *Citizen) {
	female := c.Sex == iin.SexFemale
	p := g.r.IntN(100)
	if g.r.IntN(4) == 0 { // about a quarter with Russian names
		father := russianMale[g.r.IntN(len(russianMale))]
		c.LastName = pick(g.r, russianSurnames)
		if female {
			c.FirstName = pick(g.r, russianFemale)
			c.LastName = feminine(c.LastName)
			c.Patronymic = father.daughter
		} else {
			c.FirstName = pick(g.r, russianMale).name
			c.Patronymic = father.son
		}
		if p < 3 {
			c.Patronymic = ""
		}
		return
	}
	c.LastName = pick(g.r, kazakhSurnames)
	if female {
		c.FirstName = pick(g.r, kazakhFemale)
		c.LastName = feminine(c.LastName)
	} else {
		c.FirstName = pick(g.r, kazakhMale)
	}
	father := pick(g.r, kazakhMale)
	// A surname in -ұлы/-қызы goes with a patronymic of the same style.
	kazakhStyle := p < 60 || strings.HasSuffix(c.LastName, "ұлы") || strings.HasSuffix(c.LastName, "қызы")
	switch {
	case p < 6: // no patronymic
	case kazakhStyle: // Асанұлы, Асанқызы
		c.Patronymic = father + "ұлы"
		if female {
			c.Patronymic = father + "қызы"
		}
	default: // Russian style: Асанович, Асановна
		c.Patronymic = father + "ович"
		if female {
			c.Patronymic = father + "овна"
		}
	}
}

// feminine returns the female form of a male surname from the lists below:
// Сейітов → Сейітова, Қалиев → Қалиева, Ғабдуллин → Ғабдуллина,
// Асқарұлы → Асқарқызы.
func feminine(surname string) string {
	if stem, ok := strings.CutSuffix(surname, "ұлы"); ok {
		return stem + "қызы"
	}
	return surname + "а"
}

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

// address draws a registered address.
func (g *generator) address() Address {
	w := g.r.IntN(localityTotal)
	var loc locality
	for _, l := range localities {
		if w -= l.weight; w < 0 {
			loc = l
			break
		}
	}
	a := Address{
		KATO:     loc.kato,
		Region:   regions[loc.kato[:2]],
		Locality: loc.name,
		Street:   pick(g.r, streets),
		House:    strconv.Itoa(1 + g.r.IntN(150)),
	}
	if g.r.IntN(8) == 0 {
		a.House += pick(g.r, houseSuffixes)
	}
	if g.r.IntN(10) < 7 { // a flat in a block; otherwise a private house
		a.Flat = strconv.Itoa(1 + g.r.IntN(240))
	}
	return a
}

// houseSuffixes are letters and building numbers after a house number.
var houseSuffixes = []string{"А", "Б", "В", "/1", "/2"}

// Regions and cities of republican significance used by the demo, keyed by
// the first two digits of KATO (which equal the ISO 3166-2:KZ numbers).
var regions = map[string]Text{
	"10": {"Абай облысы", "Абайская область", "Abai Region"},
	"15": {"Ақтөбе облысы", "Актюбинская область", "Aktobe Region"},
	"23": {"Атырау облысы", "Атырауская область", "Atyrau Region"},
	"31": {"Жамбыл облысы", "Жамбылская область", "Zhambyl Region"},
	"35": {"Қарағанды облысы", "Карагандинская область", "Karaganda Region"},
	"39": {"Қостанай облысы", "Костанайская область", "Kostanay Region"},
	"43": {"Қызылорда облысы", "Кызылординская область", "Kyzylorda Region"},
	"47": {"Маңғыстау облысы", "Мангистауская область", "Mangystau Region"},
	"55": {"Павлодар облысы", "Павлодарская область", "Pavlodar Region"},
	"63": {"Шығыс Қазақстан облысы", "Восточно-Казахстанская область", "East Kazakhstan Region"},
	"71": {"Астана қаласы", "город Астана", "Astana City"},
	"75": {"Алматы қаласы", "город Алматы", "Almaty City"},
	"79": {"Шымкент қаласы", "город Шымкент", "Shymkent City"},
}

type locality struct {
	kato   string // its first two digits are a key of regions
	name   Text
	weight int // roughly the population, in tens of thousands
}

// localities are cities and city districts with their KATO codes. The Astana
// and Almaty district codes are from kz.md §8.1; the others are the codes
// that public code using the KATO file gives for those cities and districts.
var localities = []locality{
	{"711110000", Text{"Алматы ауданы", "район Алматы", "Almaty District"}, 30},
	{"711210000", Text{"Есіл ауданы", "район Есиль", "Esil District"}, 30},
	{"711310000", Text{"Сарыарқа ауданы", "район Сарыарка", "Saryarka District"}, 25},
	{"711410000", Text{"Байқоңыр ауданы", "район Байконыр", "Baikonur District"}, 25},
	{"711510000", Text{"Нұра ауданы", "район Нура", "Nura District"}, 20},
	{"751110000", Text{"Алмалы ауданы", "Алмалинский район", "Almaly District"}, 22},
	{"751210000", Text{"Алатау ауданы", "Алатауский район", "Alatau District"}, 30},
	{"751310000", Text{"Әуезов ауданы", "Ауэзовский район", "Auezov District"}, 32},
	{"751410000", Text{"Бостандық ауданы", "Бостандыкский район", "Bostandyk District"}, 35},
	{"751710000", Text{"Медеу ауданы", "Медеуский район", "Medeu District"}, 22},
	{"791110000", Text{"Абай ауданы", "Абайский район", "Abai District"}, 30},
	{"791310000", Text{"Әл-Фараби ауданы", "Аль-Фарабийский район", "Al-Farabi District"}, 27},
	{"791910000", Text{"Тұран ауданы", "Туранский район", "Turan District"}, 25},
	{"351010000", Text{"Қарағанды", "Караганда", "Karaganda"}, 50},
	{"151010000", Text{"Ақтөбе", "Актобе", "Aktobe"}, 60},
	{"551010000", Text{"Павлодар", "Павлодар", "Pavlodar"}, 36},
	{"231010000", Text{"Атырау", "Атырау", "Atyrau"}, 30},
	{"631010000", Text{"Өскемен", "Усть-Каменогорск", "Oskemen"}, 33},
	{"311010000", Text{"Тараз", "Тараз", "Taraz"}, 43},
	{"391010000", Text{"Қостанай", "Костанай", "Kostanay"}, 26},
	{"431010000", Text{"Қызылорда", "Кызылорда", "Kyzylorda"}, 32},
	{"101010000", Text{"Семей", "Семей", "Semey"}, 35},
	{"471010000", Text{"Ақтау", "Актау", "Aktau"}, 26},
}

var localityTotal = func() int {
	t := 0
	for _, l := range localities {
		t += l.weight
	}
	return t
}()

// streets are street names common to Kazakhstan's cities, written either the
// Kazakh way or the Russian way, as both appear in registered addresses.
var streets = []string{
	"Абай даңғылы", "Абылай хан даңғылы", "Төле би көшесі", "Қабанбай батыр көшесі",
	"Жамбыл көшесі", "Сәтбаев көшесі", "Бейбітшілік көшесі", "Желтоқсан көшесі",
	"Достық даңғылы", "Тәуелсіздік даңғылы", "Әуезов көшесі", "Байтұрсынұлы көшесі",
	"Сейфуллин көшесі", "Құрманғазы көшесі", "Наурыз көшесі", "Бұқар жырау даңғылы",
	"ул. Жибек Жолы", "пр. Абая", "ул. Толе би", "ул. Кунаева", "ул. Пушкина",
	"ул. Гоголя", "ул. Байтурсынова", "ул. Ауэзова", "пр. Республики",
	"ул. Мира", "ул. Школьная", "ул. Строителей", "мкр. Жастар", "мкр. Жұлдыз",
}

// Kazakh first names. Male names all end in a hard consonant, so that both
// patronymic styles (Асанұлы, Асанович) are formed by adding a suffix.
var kazakhMale = []string{
	"Асан", "Үсен", "Ерлан", "Нұрлан", "Қайрат", "Бауыржан", "Ерболат", "Дәурен",
	"Серік", "Айдос", "Арман", "Асқар", "Бақыт", "Болат", "Ғалым", "Дархан",
	"Жандос", "Жасұлан", "Қанат", "Мұрат", "Нұржан", "Олжас", "Рүстем", "Самат",
	"Талғат", "Тимур", "Ұлан", "Шыңғыс", "Әділет", "Әлихан", "Ермек", "Азамат",
	"Ақылбек", "Бекзат", "Досжан", "Ерасыл", "Жеңіс", "Мақсат", "Санжар", "Темірлан",
	"Айбек", "Бағдат", "Ернар", "Қуандық", "Ілияс", "Өмірзақ",
}

var kazakhFemale = []string{
	"Айгүл", "Айгерім", "Ақмарал", "Айжан", "Әсел", "Ботагөз", "Гүлнар", "Гүлмира",
	"Динара", "Жанар", "Жұлдыз", "Зарина", "Қарлығаш", "Ләззат", "Мадина", "Мөлдір",
	"Назгүл", "Нұргүл", "Перизат", "Салтанат", "Сәуле", "Толқын", "Ұлжан", "Шынар",
	"Аружан", "Балжан", "Дана", "Еркежан", "Жансая", "Інжу", "Кәмила", "Ләйлә",
	"Меруерт", "Назерке", "Нұрай", "Раушан", "Сая", "Томирис", "Ұлпан", "Айару",
	"Гүлжан", "Әлия", "Фариза", "Дариға",
}

// Kazakh surnames in the male form; [feminine] gives the female form.
var kazakhSurnames = []string{
	"Сейітов", "Ахметов", "Әбенов", "Жұмабаев", "Нұрланов", "Сүлейменов", "Оспанов",
	"Ермеков", "Қасымов", "Омаров", "Байтұрсынов", "Құнанбаев", "Мұқанов", "Исабаев",
	"Жақсыбеков", "Төлеубеков", "Бекмұхамбетов", "Қожахметов", "Смағұлов", "Рахымжанов",
	"Дүйсенов", "Есенов", "Қалиев", "Мұратов", "Серікбаев", "Ғабдуллин", "Тәжібаев",
	"Бейсенов", "Әлімжанов", "Жанұзақов", "Шәріпов", "Нұрмағамбетов", "Ысқақов",
	"Өтебаев", "Үмбетов", "Ержанов", "Мамытов", "Бекенов", "Иманғалиев",
	"Әбдірахманов", "Сәрсенбаев", "Қайыржанов",
	"Асқарұлы", "Серікұлы", "Ерланұлы", "Қанатұлы", "Болатұлы", "Нұрланұлы",
}

// russianMale holds Russian male first names with the patronymics formed from
// them, which are irregular enough (Михаил → Михайлович, Павел → Павлович)
// to be listed rather than derived.
var russianMale = []struct{ name, son, daughter string }{
	{"Александр", "Александрович", "Александровна"},
	{"Алексей", "Алексеевич", "Алексеевна"},
	{"Андрей", "Андреевич", "Андреевна"},
	{"Сергей", "Сергеевич", "Сергеевна"},
	{"Дмитрий", "Дмитриевич", "Дмитриевна"},
	{"Владимир", "Владимирович", "Владимировна"},
	{"Николай", "Николаевич", "Николаевна"},
	{"Иван", "Иванович", "Ивановна"},
	{"Михаил", "Михайлович", "Михайловна"},
	{"Евгений", "Евгеньевич", "Евгеньевна"},
	{"Павел", "Павлович", "Павловна"},
	{"Виктор", "Викторович", "Викторовна"},
	{"Юрий", "Юрьевич", "Юрьевна"},
	{"Игорь", "Игоревич", "Игоревна"},
	{"Олег", "Олегович", "Олеговна"},
	{"Денис", "Денисович", "Денисовна"},
	{"Константин", "Константинович", "Константиновна"},
	{"Максим", "Максимович", "Максимовна"},
	{"Артём", "Артёмович", "Артёмовна"},
	{"Роман", "Романович", "Романовна"},
}

var russianFemale = []string{
	"Елена", "Ольга", "Татьяна", "Наталья", "Ирина", "Светлана", "Анна", "Мария",
	"Екатерина", "Юлия", "Людмила", "Галина", "Марина", "Виктория", "Оксана",
	"Надежда", "Валентина", "Анастасия", "Ксения", "Дарья",
}

// Russian surnames in the male form; [feminine] gives the female form.
var russianSurnames = []string{
	"Иванов", "Петров", "Смирнов", "Кузнецов", "Попов", "Васильев", "Соколов",
	"Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев",
	"Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Никитин",
}
