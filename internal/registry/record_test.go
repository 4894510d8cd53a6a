package registry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
)

func TestRecordRoundTrip(t *testing.T) {
	id, _ := iin.Parse("900101300017")
	p := Person{IIN: id, LastName: "Сейітов", FirstName: "Асан", BirthDate: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), Sex: "male",
		Address: &Address{KATO: "711110000", Region: i18n.Text{KK: "Астана", RU: "Астана", EN: "Astana"}, Street: "Абай", House: "1"}}
	got, err := PersonFromRecord(p.Record())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for _, bad := range []map[string]any{
		{"iin": "900101300018", "last_name": "A", "first_name": "B", "birth_date": "1990-01-01"},
		{"iin": "900101300017", "last_name": "A", "first_name": "B", "birth_date": "01.01.1990"},
		{"iin": "900101300017", "last_name": " ", "first_name": "B", "birth_date": "1990-01-01"},
		{"iin": 900101300017},
	} {
		if _, err := PersonFromRecord(bad); err == nil {
			t.Errorf("PersonFromRecord(%v) accepted a bad record", bad)
		}
	}
}
