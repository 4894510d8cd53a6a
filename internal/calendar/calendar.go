package calendar

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/web"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the calendar capability's part of the database.
func Schema() pg.Schema { return pg.NewSchema("calendar", migrations) }

// Almaty is Kazakhstan's time: UTC+5 all year, the one time zone of the
// country since 2024-03-01. It is fixed here rather than read from tzdata,
// whose older releases still give Asia/Almaty UTC+6.
var Almaty = time.FixedZone("+05", 5*60*60)

// The kinds of exception to the default week.
const (
	Holiday = "holiday" // a day off that would be a working day (Monday to Friday)
	Working = "working" // a Saturday or Sunday made a working day by a transfer decree
)

// Limits.
const (
	// MaxWorkingDays bounds a deadline: about fourteen years.
	MaxWorkingDays = 3650
	// MinYear and MaxYear bound the years that hold exceptions; days
	// outside them follow the default week. Edits outside are refused.
	MinYear = 2000
	MaxYear = 2199
	// MaxNameLength bounds a day's name, in characters, in each language.
	MaxNameLength = 200
	// maxSpan bounds WorkingDaysBetween: about a century.
	maxSpan = 36600
)

// CacheTTL is how long a year's exceptions are kept in memory. An edit on
// this node drops the year at once; an edit on another node is seen here
// within CacheTTL.
const CacheTTL = time.Minute

// ErrNotFound means the day has no exception to delete.
var ErrNotFound = errors.New("calendar: the day has no exception")

// ErrRange means a count or a date is outside what the calendar computes.
var ErrRange = errors.New("calendar: out of range")

// Day is an exception to the default week.
type Day struct {
	Date string    `json:"date"` // YYYY-MM-DD
	Kind string    `json:"kind"` // Holiday or Working
	Name i18n.Text `json:"name"`
}

// Calendar answers which days are working days. It caches each year's
// exceptions (see CacheTTL) and is safe for concurrent use.
type Calendar struct {
	pool  *pgxpool.Pool
	clock clock.Clock
	// now measures cache age: the process's own time, not the platform
	// clock, which tests and service test runs stop.
	now func() time.Time

	mu    sync.Mutex
	years map[int]*year
	// gen changes on every local edit, so a load that raced an edit does
	// not put its stale result into the cache.
	gen uint64
}

// year is one year's exceptions.
type year struct {
	kinds   map[int]string // by day of the year
	days    []Day          // ordered by date
	expires time.Time
}

var noExceptions = &year{}

// New returns the calendar on pool; clk stamps edits.
func New(pool *pgxpool.Pool, clk clock.Clock) *Calendar {
	return &Calendar{pool: pool, clock: clk, now: time.Now, years: map[int]*year{}}
}

// date is a civil date: midnight UTC of that day.
func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// dayOf is t's date in Kazakhstan.
func dayOf(t time.Time) time.Time {
	l := t.In(Almaty)
	return date(l.Year(), l.Month(), l.Day())
}

// endOf is the last instant of day d in Kazakhstan, in UTC.
func endOf(d time.Time) time.Time {
	return time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, Almaty).Add(-time.Nanosecond).UTC()
}

func weekend(d time.Time) bool { return d.Weekday() == time.Saturday || d.Weekday() == time.Sunday }

func (y *year) working(d time.Time) bool {
	if k, ok := y.kinds[d.YearDay()]; ok {
		return k == Working
	}
	return !weekend(d)
}

// year returns the exceptions of y, from the cache when fresh.
func (c *Calendar) year(ctx context.Context, y int) (*year, error) {
	if y < MinYear || y > MaxYear {
		return noExceptions, nil
	}
	now := c.now()
	c.mu.Lock()
	cached, ok := c.years[y]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Before(cached.expires) {
		return cached, nil
	}
	rows, err := c.pool.Query(ctx, `
		SELECT day, kind, name_kk, name_ru, name_en FROM calendar_day
		WHERE day BETWEEN make_date($1, 1, 1) AND make_date($1, 12, 31) ORDER BY day`, y)
	if err != nil {
		return nil, fmt.Errorf("read calendar %d: %w", y, err)
	}
	loaded := &year{kinds: map[int]string{}, expires: now.Add(CacheTTL)}
	var day time.Time
	var d Day
	_, err = pgx.ForEachRow(rows, []any{&day, &d.Kind, &d.Name.KK, &d.Name.RU, &d.Name.EN}, func() error {
		d.Date = day.Format(time.DateOnly)
		loaded.kinds[day.YearDay()] = d.Kind
		loaded.days = append(loaded.days, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read calendar %d: %w", y, err)
	}
	c.mu.Lock()
	if c.gen == gen {
		c.years[y] = loaded
	}
	c.mu.Unlock()
	return loaded, nil
}

// forget drops year y after a local edit.
func (c *Calendar) forget(y int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.years, y)
}

// IsWorkingDay reports whether day's date in Kazakhstan is a working day.
func (c *Calendar) IsWorkingDay(ctx context.Context, day time.Time) (bool, error) {
	d := dayOf(day)
	y, err := c.year(ctx, d.Year())
	if err != nil {
		return false, err
	}
	return y.working(d), nil
}

// AddWorkingDays returns the deadline n working days after t (1 <= n <=
// MaxWorkingDays): the end of the n-th working day after t's date in
// Kazakhstan, in UTC. t's own day never counts, working or not, so an
// application submitted on Friday at 15:00 with one working day is due on
// Monday at 23:59:59.999999999 Almaty time (18:59:59.999999999 UTC), unless
// Monday is a holiday.
func (c *Calendar) AddWorkingDays(ctx context.Context, t time.Time, n int) (time.Time, error) {
	if n < 1 || n > MaxWorkingDays {
		return time.Time{}, fmt.Errorf("%w: %d working days; want 1 to %d", ErrRange, n, MaxWorkingDays)
	}
	d := dayOf(t)
	var y *year
	for count := 0; count < n; {
		d = d.AddDate(0, 0, 1)
		if y == nil || d.YearDay() == 1 {
			if d.Year() > 9999 {
				return time.Time{}, fmt.Errorf("%w: the deadline falls after year 9999", ErrRange)
			}
			var err error
			if y, err = c.year(ctx, d.Year()); err != nil {
				return time.Time{}, err
			}
		}
		if y.working(d) {
			count++
		}
	}
	return endOf(d), nil
}

// WorkingDaysBetween counts the working days after from's date up to and
// including to's date (dates in Kazakhstan); 0 when to's date is not after
// from's. For every t and n, WorkingDaysBetween(t, AddWorkingDays(t, n)) is
// n. The span is bounded to about a century (ErrRange).
func (c *Calendar) WorkingDaysBetween(ctx context.Context, from, to time.Time) (int, error) {
	a, b := dayOf(from), dayOf(to)
	if !b.After(a) {
		return 0, nil
	}
	if b.Sub(a) > maxSpan*24*time.Hour {
		return 0, fmt.Errorf("%w: more than %d days between %s and %s", ErrRange, maxSpan, a.Format(time.DateOnly), b.Format(time.DateOnly))
	}
	return c.count(ctx, a, b)
}

// count counts the working days in (a, b], civil dates.
func (c *Calendar) count(ctx context.Context, a, b time.Time) (int, error) {
	n := 0
	var y *year
	for d := a.AddDate(0, 0, 1); !d.After(b); d = d.AddDate(0, 0, 1) {
		if y == nil || d.YearDay() == 1 {
			var err error
			if y, err = c.year(ctx, d.Year()); err != nil {
				return 0, err
			}
		}
		if y.working(d) {
			n++
		}
	}
	return n, nil
}

// Days returns the exceptions of year y, by date; none outside MinYear to
// MaxYear.
func (c *Calendar) Days(ctx context.Context, y int) ([]Day, error) {
	yr, err := c.year(ctx, y)
	if err != nil {
		return nil, err
	}
	return append([]Day{}, yr.days...), nil
}

// Set inserts or replaces the exception on d.Date; by names who edits
// ("admin:api-token", "officer:<id>"). A 'working' day must be a Saturday or
// Sunday. Invalid input is an *apierr.Error naming each wrong field
// (/date, /kind, /name/kk, ...).
func (c *Calendar) Set(ctx context.Context, d Day, by string) error {
	d = normalise(d)
	day, err := validate(d)
	if err != nil {
		return err
	}
	if by == "" {
		return errors.New("calendar: an edit needs its author")
	}
	now := c.clock.Now()
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO calendar_day (day, kind, name_kk, name_ru, name_en, updated_at, updated_by)
			VALUES ($1::date, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (day) DO UPDATE SET kind = EXCLUDED.kind, name_kk = EXCLUDED.name_kk,
				name_ru = EXCLUDED.name_ru, name_en = EXCLUDED.name_en,
				updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
			d.Date, d.Kind, d.Name.KK, d.Name.RU, d.Name.EN, now, by)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Event{
			At: now, Actor: by, Action: "calendar.day.set_" + d.Kind, Object: "calendar_day:" + d.Date,
			Purpose: purpose, RequestID: web.RequestID(ctx),
		})
	})
	if err != nil {
		return fmt.Errorf("set calendar day %s: %w", d.Date, err)
	}
	c.forget(day.Year())
	return nil
}

// purpose is the audit purpose of every edit.
const purpose = "working-day calendar (Labour Code art. 84, transfer decrees)"

// Delete removes the exception on day's date in Kazakhstan, which then
// follows the default week; ErrNotFound when there is none.
func (c *Calendar) Delete(ctx context.Context, day time.Time, by string) error {
	d := dayOf(day)
	if d.Year() < MinYear || d.Year() > MaxYear {
		return ErrNotFound
	}
	if by == "" {
		return errors.New("calendar: an edit needs its author")
	}
	s := d.Format(time.DateOnly)
	now := c.clock.Now()
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM calendar_day WHERE day = $1::date`, s)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return audit.Record(ctx, tx, audit.Event{
			At: now, Actor: by, Action: "calendar.day.delete", Object: "calendar_day:" + s,
			Purpose: purpose, RequestID: web.RequestID(ctx),
		})
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete calendar day %s: %w", s, err)
	}
	c.forget(d.Year())
	return nil
}

// ParseDate reads a YYYY-MM-DD date between MinYear and MaxYear. On failure
// it returns the field code: apierr.FieldFormat or apierr.FieldOutOfRange.
func ParseDate(s string) (time.Time, apierr.Code) {
	if len(s) != len(time.DateOnly) {
		return time.Time{}, apierr.FieldFormat
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, apierr.FieldFormat
	}
	if d.Year() < MinYear || d.Year() > MaxYear {
		return time.Time{}, apierr.FieldOutOfRange
	}
	return d, ""
}

// normalise trims the names.
func normalise(d Day) Day {
	d.Name = i18n.Text{KK: strings.TrimSpace(d.Name.KK), RU: strings.TrimSpace(d.Name.RU), EN: strings.TrimSpace(d.Name.EN)}
	return d
}

// validate checks d and returns its date.
func validate(d Day) (time.Time, error) {
	var fields []apierr.FieldError
	day, code := ParseDate(d.Date)
	if code != "" {
		fields = append(fields, apierr.FieldError{Path: "/date", Code: code})
	}
	switch d.Kind {
	case Holiday:
	case Working:
		if code == "" && !weekend(day) {
			fields = append(fields, apierr.FieldError{Path: "/kind", Code: apierr.FieldCalendarNotWeekend})
		}
	case "":
		fields = append(fields, apierr.FieldError{Path: "/kind", Code: apierr.FieldRequired})
	default:
		fields = append(fields, apierr.FieldError{Path: "/kind", Code: apierr.FieldOneOf})
	}
	for _, n := range []struct{ lang, text string }{{"kk", d.Name.KK}, {"ru", d.Name.RU}, {"en", d.Name.EN}} {
		switch {
		case n.text == "":
			fields = append(fields, apierr.FieldError{Path: "/name/" + n.lang, Code: apierr.FieldRequired})
		case utf8.RuneCountInString(n.text) > MaxNameLength:
			fields = append(fields, apierr.FieldError{Path: "/name/" + n.lang, Code: apierr.FieldTooLong})
		case !utf8.ValidString(n.text) || strings.ContainsFunc(n.text, isControl):
			fields = append(fields, apierr.FieldError{Path: "/name/" + n.lang, Code: apierr.FieldFormat})
		}
	}
	if len(fields) > 0 {
		e := apierr.Wrap(apierr.Validation, fmt.Errorf("calendar day %q: %v", d.Date, fields))
		e.Fields = fields
		return time.Time{}, e
	}
	return day, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
