package servicedef

import (
	"testing"
	"time"
)

func TestAmountTiyn(t *testing.T) {
	for _, c := range []struct {
		amount Amount
		at     time.Time
		want   int64
	}{
		{Amount{MRP: 0.5}, time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), 216250},
		{Amount{MRP: 0.2}, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), 78640},
		{Amount{MRP: 4}, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), 1476800},
		// New Year's Day in Kazakhstan begins at 19:00 UTC.
		{Amount{MRP: 1}, time.Date(2025, 12, 31, 19, 30, 0, 0, time.UTC), 432500},
		{Amount{MRP: 1}, time.Date(2025, 12, 31, 18, 30, 0, 0, time.UTC), 393200},
		{Amount{KZT: 1500.5}, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), 150050},
	} {
		got, err := c.amount.Tiyn(c.at)
		if err != nil || got != c.want {
			t.Errorf("%s at %s = %d, %v; want %d", c.amount, c.at, got, err, c.want)
		}
	}
	if _, err := (Amount{MRP: 1}).Tiyn(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("an MRP of an unknown year gave an amount")
	}
}
