package calendar

import "time"

// SetCacheTime makes c measure the age of its cache with now, so tests can
// move past CacheTTL without sleeping.
func SetCacheTime(c *Calendar, now func() time.Time) { c.now = now }
