// Package calendar owns the working-day calendar of Kazakhstan: which days
// are working days, so that legal deadlines ("5 working days") can be counted.
//
// The default week is Monday to Friday working, Saturday and Sunday off. The
// table holds only the exceptions: 'holiday', a day off that is not a weekend
// day (a public holiday, a day off carried over from a holiday that fell on a
// weekend, or the weekday side of a government transfer decree), and
// 'working', a Saturday or Sunday made a working day by such a decree. The
// migration seeds the public holidays and carried-over days of 2025-2027
// (Labour Code art. 84, Law "On holidays in the Republic of Kazakhstan");
// each year's transfer decree is entered by an administrator through
// PUT /api/v1/calendar/days/{date}. Public holidays that fall on a weekend
// are stored too, for their names; they change no count.
//
// Days are dates in Kazakhstan's time (Asia/Almaty, UTC+5 without daylight
// saving: the one time zone of the country since 2024-03-01). A deadline is
// the end of its day there, returned in UTC.
//
// The exceptions are cached per year for a minute ([CacheTTL]): an edit on
// this node drops the year at once, an edit on another node is seen within
// the minute. Every edit writes an audit event in its transaction and stamps
// the row with updated_at and updated_by.
//
// Owns: table calendar_day; routes /api/v1/calendar/....
//
// May import: internal/pg, internal/apierr, internal/i18n, internal/web,
// internal/clock, internal/audit.
package calendar
