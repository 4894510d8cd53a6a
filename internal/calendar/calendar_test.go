package calendar_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/calendar"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, audit.Schema(), calendar.Schema()) }

func fixedClock() *clock.Fake { return clock.NewFake(time.Date(2026, 1, 9, 10, 0, 0, 0, time.UTC)) }

// almaty is a local time in Kazakhstan: "2026-01-09 15:00".
func almaty(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, calendar.Almaty)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// endOfDay is the deadline instant for a date: its last nanosecond in Almaty, in UTC.
func endOfDay(t *testing.T, day string) time.Time {
	t.Helper()
	return almaty(t, day+" 23:59").Add(time.Minute - time.Nanosecond).UTC()
}

var name = i18n.Text{KK: "Сынақ", RU: "Тест", EN: "Test"}

func TestIsWorkingDay(t *testing.T) {
	t.Parallel()
	cal := calendar.New(pgtest.New(t).Pool, fixedClock())
	ctx := context.Background()
	tests := []struct {
		at   string // Almaty time
		want bool
		why  string
	}{
		{"2026-01-05 10:00", true, "an ordinary Monday"},
		{"2026-01-03 10:00", false, "Saturday"},
		{"2026-01-04 10:00", false, "Sunday"},
		{"2026-01-01 10:00", false, "New Year"},
		{"2026-01-02 10:00", false, "New Year, second day"},
		{"2026-01-07 10:00", false, "Orthodox Christmas on a Wednesday"},
		{"2026-03-08 10:00", false, "Women's Day on a Sunday"},
		{"2026-03-09 10:00", false, "carried over from Women's Day"},
		{"2026-03-23 10:00", false, "Nauryz on a Monday"},
		{"2026-03-24 10:00", false, "carried over from Nauryz on Saturday"},
		{"2026-03-25 10:00", false, "carried over from Nauryz on Sunday"},
		{"2026-03-26 10:00", true, "the day after Nauryz"},
		{"2026-05-11 10:00", false, "carried over from Victory Day on Saturday"},
		{"2026-05-27 10:00", false, "Kurban Ait"},
		{"2027-05-17 10:00", true, "Kurban Ait 2027 falls on Sunday and does not carry over"},
		{"2027-01-08 10:00", true, "Christmas 2027 is Thursday; Friday works"},
		{"2025-07-07 10:00", false, "carried over from Capital Day 2025 (Sunday)"},
		{"2025-12-16 10:00", false, "Independence Day"},
		{"2030-01-01 10:00", true, "a year with no exceptions: weekends only"},
		{"2030-01-05 10:00", false, "Saturday of a year with no exceptions"},
		{"2300-01-01 10:00", true, "beyond the stored years"},
	}
	for _, tt := range tests {
		got, err := cal.IsWorkingDay(ctx, almaty(t, tt.at))
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("IsWorkingDay(%s) = %v; want %v (%s)", tt.at, got, tt.want, tt.why)
		}
	}
	// The day is Kazakhstan's: Friday 19:30 UTC is already Saturday there.
	if got, _ := cal.IsWorkingDay(ctx, time.Date(2026, 1, 9, 19, 30, 0, 0, time.UTC)); got {
		t.Error("Friday 2026-01-09 19:30 UTC (Saturday 00:30 in Almaty) is a working day; want the day of Almaty")
	}
	if got, _ := cal.IsWorkingDay(ctx, time.Date(2026, 1, 9, 18, 30, 0, 0, time.UTC)); !got {
		t.Error("Friday 2026-01-09 18:30 UTC (23:30 in Almaty) is not a working day")
	}
}

func TestAddWorkingDays(t *testing.T) {
	t.Parallel()
	cal := calendar.New(pgtest.New(t).Pool, fixedClock())
	ctx := context.Background()
	tests := []struct {
		from string // Almaty time
		n    int
		want string // the last working day
		why  string
	}{
		{"2026-01-14 10:00", 1, "2026-01-15", "Wednesday to Thursday"},
		{"2026-01-09 15:00", 1, "2026-01-12", "Friday afternoon: Monday"},
		{"2026-01-09 23:59", 1, "2026-01-12", "Friday just before midnight: Monday"},
		{"2026-01-10 12:00", 1, "2026-01-12", "Saturday: Monday"},
		{"2026-01-11 12:00", 1, "2026-01-12", "Sunday: Monday"},
		{"2026-01-12 00:00", 1, "2026-01-13", "the submission day never counts"},
		{"2026-02-02 09:00", 5, "2026-02-09", "five working days, a weekend between"},
		{"2025-12-30 10:00", 3, "2026-01-06", "across New Year: Dec 31, (Jan 1-4 off), Jan 5, Jan 6"},
		{"2025-12-31 10:00", 1, "2026-01-05", "New Year's Eve: Monday after the holidays"},
		{"2026-01-06 10:00", 1, "2026-01-08", "Christmas on Wednesday"},
		{"2026-03-19 10:00", 2, "2026-03-26", "across Nauryz 2026: Friday, then 21-25 March off"},
		{"2025-03-20 10:00", 1, "2025-03-26", "Nauryz 2025: 21-25 March off"},
		{"2026-03-06 17:00", 1, "2026-03-10", "Friday before Women's Day on Sunday: Monday is off too"},
		{"2026-04-30 10:00", 5, "2026-05-12", "May: 1st, 7th, Victory Day carried to the 11th"},
		{"2030-12-31 10:00", 1, "2031-01-01", "no holidays stored for 2031: weekends only"},
		{"2026-01-05 10:00", 246, "2027-01-05", "a year of working days"},
	}
	for _, tt := range tests {
		got, err := cal.AddWorkingDays(ctx, almaty(t, tt.from), tt.n)
		if err != nil {
			t.Fatalf("AddWorkingDays(%s, %d): %v", tt.from, tt.n, err)
		}
		if want := endOfDay(t, tt.want); !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("AddWorkingDays(%s, %d) = %s; want %s, the end of %s in Almaty (%s)", tt.from, tt.n, got, want, tt.want, tt.why)
		}
	}
	// The literal instant of the brief: Monday 23:59:59.999999999 Almaty is 18:59:59.999999999 UTC.
	got, _ := cal.AddWorkingDays(ctx, almaty(t, "2026-01-09 15:00"), 1)
	if s := got.Format(time.RFC3339Nano); s != "2026-01-12T18:59:59.999999999Z" {
		t.Errorf("deadline %s; want 2026-01-12T18:59:59.999999999Z", s)
	}
	for _, n := range []int{0, -1, calendar.MaxWorkingDays + 1} {
		if _, err := cal.AddWorkingDays(ctx, almaty(t, "2026-01-09 15:00"), n); !errors.Is(err, calendar.ErrRange) {
			t.Errorf("AddWorkingDays(n=%d) error %v; want ErrRange", n, err)
		}
	}
	if _, err := cal.AddWorkingDays(ctx, almaty(t, "2026-01-09 15:00"), calendar.MaxWorkingDays); err != nil {
		t.Errorf("AddWorkingDays(n=MaxWorkingDays): %v", err)
	}
	if _, err := cal.AddWorkingDays(ctx, almaty(t, "9999-12-01 10:00"), 100); !errors.Is(err, calendar.ErrRange) {
		t.Errorf("a deadline after year 9999: error %v; want ErrRange", err)
	}
}

// TestAddAndCountAgree: counting the working days up to a deadline gives
// back the number added, from any hour of any day around the holidays.
func TestAddAndCountAgree(t *testing.T) {
	t.Parallel()
	cal := calendar.New(pgtest.New(t).Pool, fixedClock())
	ctx := context.Background()
	start := almaty(t, "2025-12-20 00:00")
	for h := 0; h < 24*130; h += 7 {
		from := start.Add(time.Duration(h) * time.Hour)
		for _, n := range []int{1, 2, 3, 5, 10, 30} {
			deadline, err := cal.AddWorkingDays(ctx, from, n)
			if err != nil {
				t.Fatal(err)
			}
			if ok, _ := cal.IsWorkingDay(ctx, deadline); !ok {
				t.Fatalf("AddWorkingDays(%s, %d) = %s, not a working day", from, n, deadline)
			}
			if got, _ := cal.WorkingDaysBetween(ctx, from, deadline); got != n {
				t.Fatalf("WorkingDaysBetween(%s, AddWorkingDays(.., %d) = %s) = %d", from, n, deadline, got)
			}
			if got, _ := cal.WorkingDaysBetween(ctx, from, deadline.Add(-24*time.Hour)); got != n-1 {
				t.Fatalf("a day before the deadline %s, %d working days have passed; want %d", deadline, got, n-1)
			}
		}
	}
}

func TestWorkingDaysBetween(t *testing.T) {
	t.Parallel()
	cal := calendar.New(pgtest.New(t).Pool, fixedClock())
	ctx := context.Background()
	tests := []struct {
		from, to string
		want     int
	}{
		// 2026 has 261 weekdays, 15 of them holidays or carried over.
		{"2025-12-31 23:00", "2026-12-31 01:00", 246},
		{"2026-01-09 15:00", "2026-01-12 09:00", 1},
		{"2026-01-09 15:00", "2026-01-11 23:00", 0},
		{"2026-01-12 09:00", "2026-01-12 18:00", 0},
		{"2026-01-12 09:00", "2026-01-09 09:00", 0},
		{"2026-03-20 09:00", "2026-03-27 09:00", 2},
		{"2030-01-01 09:00", "2030-01-31 09:00", 22},
	}
	for _, tt := range tests {
		got, err := cal.WorkingDaysBetween(ctx, almaty(t, tt.from), almaty(t, tt.to))
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("WorkingDaysBetween(%s, %s) = %d; want %d", tt.from, tt.to, got, tt.want)
		}
	}
	if _, err := cal.WorkingDaysBetween(ctx, almaty(t, "2000-01-01 00:00"), almaty(t, "2200-01-01 00:00")); !errors.Is(err, calendar.ErrRange) {
		t.Errorf("two centuries: error %v; want ErrRange", err)
	}
}

// TestWorkingSaturday: a transfer decree makes a Saturday a working day and
// a weekday a day off; deadlines follow at once.
func TestWorkingSaturday(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	cal := calendar.New(db.Pool, fixedClock())
	ctx := context.Background()
	friday := almaty(t, "2026-01-09 15:00")
	if got, _ := cal.AddWorkingDays(ctx, friday, 1); !got.Equal(endOfDay(t, "2026-01-12")) {
		t.Fatalf("before the decree: %s", got)
	}
	decree := i18n.Text{KK: "Демалыс күнін ауыстыру", RU: "Перенос выходного дня", EN: "Day off transferred"}
	if err := cal.Set(ctx, calendar.Day{Date: "2026-01-10", Kind: calendar.Working, Name: decree}, "admin:test"); err != nil {
		t.Fatal(err)
	}
	if err := cal.Set(ctx, calendar.Day{Date: "2026-01-12", Kind: calendar.Holiday, Name: decree}, "admin:test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := cal.IsWorkingDay(ctx, almaty(t, "2026-01-10 10:00")); !ok {
		t.Error("the Saturday made working is not a working day")
	}
	if got, _ := cal.AddWorkingDays(ctx, friday, 1); !got.Equal(endOfDay(t, "2026-01-10")) {
		t.Errorf("Friday + 1 = %s; want the working Saturday", got)
	}
	if got, _ := cal.AddWorkingDays(ctx, friday, 2); !got.Equal(endOfDay(t, "2026-01-13")) {
		t.Errorf("Friday + 2 = %s; want Tuesday (Monday is the transferred day off)", got)
	}
}

// TestEditsTakeEffectAndAreAudited: Set and Delete change answers at once on
// the node that edits (the cache is dropped), stamp the row, and leave an
// audit event each.
func TestEditsTakeEffectAndAreAudited(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	clk := fixedClock()
	cal := calendar.New(db.Pool, clk)
	ctx := context.Background()
	monday := almaty(t, "2026-06-01 10:00")
	if ok, _ := cal.IsWorkingDay(ctx, monday); !ok { // now cached
		t.Fatal("2026-06-01 is not a working day before any edit")
	}
	if err := cal.Set(ctx, calendar.Day{Date: "2026-06-01", Kind: calendar.Holiday, Name: i18n.Text{KK: " Сынақ ", RU: "Тест", EN: "Test"}}, "admin:alice"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := cal.IsWorkingDay(ctx, monday); ok {
		t.Error("after Set(holiday), 2026-06-01 is still a working day: the cache was not dropped")
	}
	days, _ := cal.Days(ctx, 2026)
	if i := slices.IndexFunc(days, func(d calendar.Day) bool { return d.Date == "2026-06-01" }); i < 0 || days[i].Name != name {
		t.Errorf("Days(2026) lacks the new day or its trimmed name: %v", days)
	}
	var by string
	var at time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT updated_by, updated_at FROM calendar_day WHERE day = '2026-06-01'`).Scan(&by, &at); err != nil || by != "admin:alice" || !at.Equal(clk.Now()) {
		t.Errorf("row stamped by %q at %s (%v); want admin:alice at %s", by, at, err, clk.Now())
	}

	clk.Advance(time.Hour)
	if err := cal.Delete(ctx, almaty(t, "2026-06-01 00:00"), "admin:bob"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := cal.IsWorkingDay(ctx, monday); !ok {
		t.Error("after Delete, 2026-06-01 is still a day off")
	}
	if err := cal.Delete(ctx, monday, "admin:bob"); !errors.Is(err, calendar.ErrNotFound) {
		t.Errorf("second Delete: %v; want ErrNotFound", err)
	}

	rows, err := db.Pool.Query(ctx, `SELECT actor || ' ' || action || ' ' || object FROM audit_event ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	want := []string{
		"admin:alice calendar.day.set_holiday calendar_day:2026-06-01",
		"admin:bob calendar.day.delete calendar_day:2026-06-01",
	}
	if !slices.Equal(events, want) {
		t.Errorf("audit events %q; want %q", events, want)
	}
}

// TestOtherNodesEditsSeenWithinTTL: another node's edit reaches this node's
// cache once CacheTTL has passed, not before.
func TestOtherNodesEditsSeenWithinTTL(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Now()
	here := calendar.New(db.Pool, fixedClock())
	calendar.SetCacheTime(here, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	there := calendar.New(db.Pool, fixedClock())
	day := almaty(t, "2026-06-02 10:00")
	if ok, _ := here.IsWorkingDay(ctx, day); !ok {
		t.Fatal("2026-06-02 is not a working day before any edit")
	}
	if err := there.Set(ctx, calendar.Day{Date: "2026-06-02", Kind: calendar.Holiday, Name: name}, "admin:other-node"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := here.IsWorkingDay(ctx, day); !ok {
		t.Error("the edit of another node is seen at once; the cache is not used")
	}
	mu.Lock()
	now = now.Add(calendar.CacheTTL + time.Second)
	mu.Unlock()
	if ok, _ := here.IsWorkingDay(ctx, day); ok {
		t.Error("the edit of another node is not seen after CacheTTL")
	}
}

func TestSetValidation(t *testing.T) {
	t.Parallel()
	cal := calendar.New(pgtest.New(t).Pool, fixedClock())
	ctx := context.Background()
	long := strings.Repeat("я", calendar.MaxNameLength+1)
	tests := []struct {
		day  calendar.Day
		want []apierr.FieldError
	}{
		{calendar.Day{Date: "2026-02-30", Kind: calendar.Holiday, Name: name}, []apierr.FieldError{{Path: "/date", Code: apierr.FieldFormat}}},
		{calendar.Day{Date: "26-01-01", Kind: calendar.Holiday, Name: name}, []apierr.FieldError{{Path: "/date", Code: apierr.FieldFormat}}},
		{calendar.Day{Date: "1999-12-31", Kind: calendar.Holiday, Name: name}, []apierr.FieldError{{Path: "/date", Code: apierr.FieldOutOfRange}}},
		{calendar.Day{Date: "2026-06-01", Kind: "", Name: name}, []apierr.FieldError{{Path: "/kind", Code: apierr.FieldRequired}}},
		{calendar.Day{Date: "2026-06-01", Kind: "vacation", Name: name}, []apierr.FieldError{{Path: "/kind", Code: apierr.FieldOneOf}}},
		{calendar.Day{Date: "2026-06-01", Kind: calendar.Working, Name: name}, []apierr.FieldError{{Path: "/kind", Code: apierr.FieldCalendarNotWeekend}}},
		{calendar.Day{Date: "2026-06-01", Kind: calendar.Holiday, Name: i18n.Text{KK: "a", RU: "  ", EN: long}}, []apierr.FieldError{
			{Path: "/name/ru", Code: apierr.FieldRequired}, {Path: "/name/en", Code: apierr.FieldTooLong}}},
		{calendar.Day{Date: "2026-06-01", Kind: calendar.Holiday, Name: i18n.Text{KK: "a\x00b", RU: "b", EN: "c"}}, []apierr.FieldError{{Path: "/name/kk", Code: apierr.FieldFormat}}},
		{calendar.Day{}, []apierr.FieldError{
			{Path: "/date", Code: apierr.FieldFormat}, {Path: "/kind", Code: apierr.FieldRequired},
			{Path: "/name/kk", Code: apierr.FieldRequired}, {Path: "/name/ru", Code: apierr.FieldRequired}, {Path: "/name/en", Code: apierr.FieldRequired}}},
	}
	for _, tt := range tests {
		err := cal.Set(ctx, tt.day, "admin:test")
		var e *apierr.Error
		if !errors.As(err, &e) || e.Code != apierr.Validation || !slices.Equal(e.Fields, tt.want) {
			t.Errorf("Set(%+v) = %v (fields %v); want validation %v", tt.day, err, fieldsOf(err), tt.want)
		}
	}
	// A holiday may be stored on a weekend (for its name); only 'working' needs one.
	if err := cal.Set(ctx, calendar.Day{Date: "2026-06-06", Kind: calendar.Holiday, Name: name}, "admin:test"); err != nil {
		t.Errorf("holiday on a Saturday: %v", err)
	}
	if err := cal.Set(ctx, calendar.Day{Date: "2026-06-06", Kind: calendar.Working, Name: name}, ""); err == nil {
		t.Error("an edit without its author was accepted")
	}
}

func fieldsOf(err error) []apierr.FieldError {
	var e *apierr.Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2026-01-01", "2026-02-29", "2028-02-29", "1999-12-31", "2200-01-01", "2026-1-1", "+2026-01-01", "２０２６-01-01", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, code := calendar.ParseDate(s)
		switch code {
		case "":
			if got := d.Format(time.DateOnly); got != s {
				t.Fatalf("ParseDate(%q) accepted a date that prints as %q", s, got)
			}
			if d.Year() < calendar.MinYear || d.Year() > calendar.MaxYear || d.Location() != time.UTC || d.Hour() != 0 {
				t.Fatalf("ParseDate(%q) = %s", s, d)
			}
		case apierr.FieldFormat, apierr.FieldOutOfRange:
		default:
			t.Fatalf("ParseDate(%q) code %q", s, code)
		}
	})
}
