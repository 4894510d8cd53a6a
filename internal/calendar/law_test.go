package calendar_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/calendar"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/pgtest"
)

// printSeed prints the migration's seed rows: go test ./internal/calendar -run TestSeedFollowsTheLaw -seed
var printSeed = flag.Bool("seed", false, "print the SQL seed of the law's days for the seeded years")

// seededYears are the years the migration seeds.
var seededYears = []int{2025, 2026, 2027}

// publicHoliday is a day off by the Law "On holidays" (Labour Code art. 84).
type publicHoliday struct {
	month time.Month
	day   int
	name  i18n.Text
	// religious holidays do not carry over when they fall on a weekend.
	religious bool
}

var publicHolidays = []publicHoliday{
	{time.January, 1, i18n.Text{KK: "Жаңа жыл", RU: "Новый год", EN: "New Year"}, false},
	{time.January, 2, i18n.Text{KK: "Жаңа жыл", RU: "Новый год", EN: "New Year"}, false},
	{time.January, 7, i18n.Text{KK: "Православиелік Рождество", RU: "Православное Рождество", EN: "Orthodox Christmas"}, true},
	{time.March, 8, i18n.Text{KK: "Халықаралық әйелдер күні", RU: "Международный женский день", EN: "International Women's Day"}, false},
	{time.March, 21, nauryz, false},
	{time.March, 22, nauryz, false},
	{time.March, 23, nauryz, false},
	{time.May, 1, i18n.Text{KK: "Қазақстан халқының бірлігі мерекесі", RU: "Праздник единства народа Казахстана", EN: "Unity Day of the People of Kazakhstan"}, false},
	{time.May, 7, i18n.Text{KK: "Отан қорғаушы күні", RU: "День защитника Отечества", EN: "Defender of the Fatherland Day"}, false},
	{time.May, 9, i18n.Text{KK: "Жеңіс күні", RU: "День Победы", EN: "Victory Day"}, false},
	{time.July, 6, i18n.Text{KK: "Астана күні", RU: "День Столицы", EN: "Capital Day"}, false},
	{time.August, 30, i18n.Text{KK: "Қазақстан Республикасының Конституциясы күні", RU: "День Конституции Республики Казахстан", EN: "Constitution Day"}, false},
	{time.October, 25, i18n.Text{KK: "Республика күні", RU: "День Республики", EN: "Republic Day"}, false},
	{time.December, 16, i18n.Text{KK: "Тәуелсіздік күні", RU: "День Независимости", EN: "Independence Day"}, false},
}

var nauryz = i18n.Text{KK: "Наурыз мейрамы", RU: "Наурыз мейрамы", EN: "Nauryz"}

var kurbanAit = i18n.Text{KK: "Құрбан айт", RU: "Курбан айт", EN: "Kurban Ait"}

// kurbanAitDay is the first day of Kurban Ait, set each year by the lunar
// calendar (and announced by the Spiritual Administration of Muslims).
var kurbanAitDay = map[int]time.Time{
	2025: time.Date(2025, time.June, 6, 0, 0, 0, 0, time.UTC),
	2026: time.Date(2026, time.May, 27, 0, 0, 0, 0, time.UTC),
	2027: time.Date(2027, time.May, 16, 0, 0, 0, 0, time.UTC),
}

func carriedName(from i18n.Text) i18n.Text {
	return i18n.Text{
		KK: "Ауыстырылған демалыс күні: " + from.KK,
		RU: "Перенесённый выходной: " + from.RU,
		EN: "Day off carried over: " + from.EN,
	}
}

func isWeekend(d time.Time) bool { return d.Weekday() == time.Saturday || d.Weekday() == time.Sunday }

// lawDays computes a year's exceptions from the law alone: every public
// holiday, and for each non-religious one on a Saturday or Sunday, a day off
// on the next working day (in date order, so a weekend of Nauryz moves to the
// days after it). Transfer decrees are not in it.
func lawDays(year int) []calendar.Day {
	type entry struct {
		day       time.Time
		name      i18n.Text
		religious bool
	}
	var holidays []entry
	for _, h := range publicHolidays {
		holidays = append(holidays, entry{time.Date(year, h.month, h.day, 0, 0, 0, 0, time.UTC), h.name, h.religious})
	}
	if d, ok := kurbanAitDay[year]; ok {
		holidays = append(holidays, entry{d, kurbanAit, true})
	}
	slices.SortFunc(holidays, func(a, b entry) int { return a.day.Compare(b.day) })
	off := map[time.Time]bool{}
	for _, h := range holidays {
		off[h.day] = true
	}
	out := map[time.Time]calendar.Day{}
	for _, h := range holidays {
		out[h.day] = calendar.Day{Date: h.day.Format(time.DateOnly), Kind: calendar.Holiday, Name: h.name}
	}
	for _, h := range holidays {
		if h.religious || !isWeekend(h.day) {
			continue
		}
		d := h.day.AddDate(0, 0, 1)
		for isWeekend(d) || off[d] {
			d = d.AddDate(0, 0, 1)
		}
		off[d] = true
		out[d] = calendar.Day{Date: d.Format(time.DateOnly), Kind: calendar.Holiday, Name: carriedName(h.name)}
	}
	days := make([]calendar.Day, 0, len(out))
	for _, d := range out {
		days = append(days, d)
	}
	slices.SortFunc(days, func(a, b calendar.Day) int { return strings.Compare(a.Date, b.Date) })
	return days
}

// TestSeedFollowsTheLaw: the migration's rows for the seeded years are what
// the law gives, computed independently here.
func TestSeedFollowsTheLaw(t *testing.T) {
	if *printSeed {
		var b strings.Builder
		q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
		b.WriteString("INSERT INTO calendar_day (day, kind, name_kk, name_ru, name_en) VALUES\n")
		var rows []string
		for _, y := range seededYears {
			for _, d := range lawDays(y) {
				rows = append(rows, fmt.Sprintf("    (%s, %s, %s, %s, %s)", q(d.Date), q(d.Kind), q(d.Name.KK), q(d.Name.RU), q(d.Name.EN)))
			}
		}
		b.WriteString(strings.Join(rows, ",\n") + ";\n")
		fmt.Print(b.String())
	}
	db := pgtest.New(t)
	cal := calendar.New(db.Pool, fixedClock())
	for _, y := range seededYears {
		got, err := cal.Days(context.Background(), y)
		if err != nil {
			t.Fatal(err)
		}
		want := lawDays(y)
		if !slices.Equal(got, want) {
			t.Errorf("seeded days of %d differ from the law:\n got  %v\n want %v", y, got, want)
		}
	}
}

// TestLawDaysKnownYears pins the generator itself to the published
// calendars: the days off carried over in 2025 and 2026.
func TestLawDaysKnownYears(t *testing.T) {
	carried := func(y int) []string {
		var out []string
		for _, d := range lawDays(y) {
			if strings.HasPrefix(d.Name.EN, "Day off carried over") {
				out = append(out, d.Date)
			}
		}
		return out
	}
	want := map[int][]string{
		2025: {"2025-03-10", "2025-03-24", "2025-03-25", "2025-07-07", "2025-09-01", "2025-10-27"},
		2026: {"2026-03-09", "2026-03-24", "2026-03-25", "2026-05-11", "2026-08-31", "2026-10-26"},
		2027: {"2027-01-04", "2027-03-24", "2027-05-03", "2027-05-10"},
	}
	for y, w := range want {
		if got := carried(y); !slices.Equal(got, w) {
			t.Errorf("carried-over days of %d = %v; want %v", y, got, w)
		}
	}
}
