package calendar

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/web"
)

// DayView is an exception as the API shows it, named in one language.
type DayView struct {
	Date    string `json:"date"`
	Weekday string `json:"weekday"` // "monday" ... "sunday"
	Kind    string `json:"kind"`
	Name    string `json:"name"`
}

// YearView is a year of the calendar as the API shows it.
type YearView struct {
	Year        int       `json:"year"`
	DaysInYear  int       `json:"days_in_year"`
	WorkingDays int       `json:"working_days"`
	DaysOff     int       `json:"days_off"`
	Days        []DayView `json:"days"`
	Language    string    `json:"language"`
}

// DeadlineView answers GET /api/v1/calendar/working-days.
type DeadlineView struct {
	From        time.Time `json:"from"`
	WorkingDays int       `json:"working_days"`
	// Deadline is the last instant of the last working day, in UTC;
	// DeadlineLocal is the same instant in Kazakhstan's time.
	Deadline      time.Time `json:"deadline"`
	DeadlineLocal time.Time `json:"deadline_local"`
	DeadlineDate  string    `json:"deadline_date"`
}

// PutDayRequest is the body of PUT /api/v1/calendar/days/{date}.
type PutDayRequest struct {
	Kind string    `json:"kind"`
	Name i18n.Text `json:"name"`
}

// adminActor is who edits through the API while the administrative token is
// the only way to sign in as an administrator.
const adminActor = "admin:api-token"

// Routes mounts the calendar API. Reading is public; editing needs the
// administrative bearer token, and an empty adminToken switches it off.
func (c *Calendar) Routes(s *web.Server, adminToken string) {
	s.HandleFunc("GET /api/v1/calendar/{year}", c.handleYear)
	s.HandleFunc("GET /api/v1/calendar/working-days", c.handleDeadline)
	s.HandleFunc("PUT /api/v1/calendar/days/{date}", func(w http.ResponseWriter, r *http.Request) error {
		if err := web.RequireBearer(r, adminToken); err != nil {
			return err
		}
		return c.handlePut(w, r)
	})
	s.HandleFunc("DELETE /api/v1/calendar/days/{date}", func(w http.ResponseWriter, r *http.Request) error {
		if err := web.RequireBearer(r, adminToken); err != nil {
			return err
		}
		return c.handleDelete(w, r)
	})
}

func view(d Day, lang i18n.Lang) DayView {
	v := DayView{Date: d.Date, Kind: d.Kind, Name: d.Name.In(lang)}
	if t, err := time.Parse(time.DateOnly, d.Date); err == nil {
		v.Weekday = weekdayName(t.Weekday())
	}
	return v
}

func weekdayName(w time.Weekday) string {
	return [...]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}[w]
}

func (c *Calendar) handleYear(w http.ResponseWriter, r *http.Request) error {
	y, err := strconv.Atoi(r.PathValue("year"))
	if err != nil || len(r.PathValue("year")) != 4 {
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/year", Code: apierr.FieldFormat})
	}
	if y < MinYear || y > MaxYear {
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/year", Code: apierr.FieldOutOfRange})
	}
	days, err := c.Days(r.Context(), y)
	if err != nil {
		return err
	}
	first, last := date(y, time.January, 1), date(y, time.December, 31)
	working, err := c.count(r.Context(), first.AddDate(0, 0, -1), last)
	if err != nil {
		return err
	}
	lang := web.Lang(r)
	out := YearView{Year: y, DaysInYear: last.YearDay(), WorkingDays: working, DaysOff: last.YearDay() - working,
		Days: make([]DayView, 0, len(days)), Language: string(lang)}
	for _, d := range days {
		out.Days = append(out.Days, view(d, lang))
	}
	w.Header().Set("Content-Language", string(lang))
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (c *Calendar) handleDeadline(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var fields []apierr.FieldError
	from := c.clock.Now()
	if s := q.Get("from"); s != "" {
		// An unescaped "+" of the offset arrives as a space.
		t, err := time.Parse(time.RFC3339, strings.Replace(s, " ", "+", 1))
		if err != nil {
			fields = append(fields, apierr.FieldError{Path: "/from", Code: apierr.FieldFormat})
		}
		from = t
	}
	n, err := strconv.Atoi(q.Get("days"))
	switch {
	case q.Get("days") == "":
		fields = append(fields, apierr.FieldError{Path: "/days", Code: apierr.FieldRequired})
	case err != nil && errors.Is(err, strconv.ErrRange):
		fields = append(fields, apierr.FieldError{Path: "/days", Code: apierr.FieldOutOfRange})
	case err != nil:
		fields = append(fields, apierr.FieldError{Path: "/days", Code: apierr.FieldFormat})
	case n < 1 || n > MaxWorkingDays:
		fields = append(fields, apierr.FieldError{Path: "/days", Code: apierr.FieldOutOfRange})
	}
	if len(fields) > 0 {
		return apierr.New(apierr.Validation, fields...)
	}
	deadline, err := c.AddWorkingDays(r.Context(), from, n)
	if errors.Is(err, ErrRange) {
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/from", Code: apierr.FieldOutOfRange})
	}
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, DeadlineView{
		From: from.UTC(), WorkingDays: n,
		Deadline: deadline, DeadlineLocal: deadline.In(Almaty), DeadlineDate: deadline.In(Almaty).Format(time.DateOnly),
	})
	return nil
}

func (c *Calendar) handlePut(w http.ResponseWriter, r *http.Request) error {
	var req PutDayRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	d := Day{Date: r.PathValue("date"), Kind: req.Kind, Name: req.Name}
	if err := c.Set(r.Context(), d, adminActor); err != nil {
		return err
	}
	lang := web.Lang(r)
	w.Header().Set("Content-Language", string(lang))
	web.WriteJSON(w, http.StatusOK, view(normalise(d), lang))
	return nil
}

func (c *Calendar) handleDelete(w http.ResponseWriter, r *http.Request) error {
	day, code := ParseDate(r.PathValue("date"))
	if code != "" {
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/date", Code: code})
	}
	err := c.Delete(r.Context(), day, adminActor)
	if errors.Is(err, ErrNotFound) {
		return apierr.New(apierr.CalendarDayNotFound)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
