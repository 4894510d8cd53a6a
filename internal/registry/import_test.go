package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/registry"
)

func TestImportRejectsBadRowsAndKeepsTheRest(t *testing.T) {
	ids := testIINs(11)
	ctx := context.Background()
	s, _ := newStore(t)
	d, _ := s.Definition("population")
	// One person already in the registry.
	if _, err := s.ApplyNow(ctx, registry.Change{Registry: "population", Key: "900101300017", Op: registry.OpCreate,
		Data: person("900101300017", "Бар"), Actor: "a", Basis: "b"}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("ы", registry.MaxFieldBytes)
	csv := "iin,last_name,first_name,birth_date,sex,address_kato,citizenship\n" +
		ids[0] + ",Ок,Асан,1990-01-01,male,711110000,KZ\n" + // 1 good
		"900101300018,Плохой,Асан,1990-01-01,male,711110000,KZ\n" + // 2 bad IIN
		ids[1] + ",Ок,Асан,01.01.1990,male,711110000,KZ\n" + // 3 bad date
		ids[2] + ",Ок,Асан,1990-01-01,male,999999999,KZ\n" + // 4 unknown KATO
		ids[0] + ",Дубль,Асан,1990-01-01,male,711110000,KZ\n" + // 5 duplicate in input
		"900101300017,Есть,Асан,1990-01-01,male,711110000,KZ\n" + // 6 already in the registry
		ids[3] + "," + long + ",Асан,1990-01-01,male,711110000,KZ\n" + // 7 oversized
		ids[4] + ",\xff\xfe,Асан,1990-01-01,male,711110000,KZ\n" + // 8 broken UTF-8
		ids[5] + ",Ок,Асан\n" + // 9 wrong field count
		ids[6] + ",Ок,Асан,1990-01-01,male,711110000,XX\n" + // 10 unknown country
		ids[7] + ",Ок,Асан,1990-01-01,male,711110000,KZ\n" // 11 good
	rows, err := registry.NewRowReader(strings.NewReader(csv), registry.FormatCSV, d)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Import(ctx, "population", rows, registry.ImportOptions{Actor: "officer:mia-1", Basis: "initial load"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Read != 11 || rep.Imported != 2 || rep.Rejected != 9 {
		t.Errorf("report %+v", rep)
	}
	got := map[int]string{}
	for _, r := range rep.Rejections {
		got[r.Row] += r.Field + " " + r.Code + ";"
	}
	want := map[int]string{
		2: "/iin iin.checksum;", 3: "/birth_date format;", 4: "/address_kato code.unknown;", 5: "/iin key.duplicate;",
		6: "/iin key.duplicate;", 7: "/last_name too_long;", 8: "/last_name encoding;", 9: " field_count;", 10: "/citizenship code.unknown;",
	}
	for row, w := range want {
		if got[row] != w {
			t.Errorf("row %d: %q, want %q", row, got[row], w)
		}
	}
	var versions, events int
	s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM registry_record_version), (SELECT count(*) FROM outbox_event)`).Scan(&versions, &events)
	if versions != 3 || events != 2 {
		t.Errorf("%d versions, %d events; want 3 and 2 (a change, an import batch)", versions, events)
	}
	var keys string
	s.Pool().QueryRow(ctx, `SELECT payload->>'keys' FROM outbox_event WHERE topic = 'registry.population.imported'`).Scan(&keys)
	if keys != `["`+ids[0]+`", "`+ids[7]+`"]` {
		t.Errorf("import event keys %s", keys)
	}

	// NDJSON: types are checked as sent.
	nd := `{"iin":"` + ids[8] + `","last_name":"Ок","first_name":"А","birth_date":"1990-01-01","sex":"male"}
{"iin":"` + ids[9] + `","last_name":5,"first_name":"А","birth_date":"1990-01-01","sex":"male"}
not json
[1]

{"iin":"` + ids[10] + `","last_name":"Ок","first_name":"А","birth_date":"1990-01-01","sex":"male","shoe_size":44}
`
	rows, _ = registry.NewRowReader(strings.NewReader(nd), registry.FormatNDJSON, d)
	rep, err = s.Import(ctx, "population", rows, registry.ImportOptions{Actor: "officer:mia-1", Basis: "initial load"})
	if err != nil {
		t.Fatal(err)
	}
	got = map[int]string{}
	for _, r := range rep.Rejections {
		got[r.Row] += r.Field + " " + r.Code + ";"
	}
	if rep.Imported != 1 || got[2] != "/last_name type;" || got[3] != " format;" || got[4] != " type;" || got[5] != "/shoe_size unknown_field;" {
		t.Errorf("ndjson report %+v", rep)
	}

	// A header naming unknown attributes stops the import before any row.
	if _, err := registry.NewRowReader(strings.NewReader("iin,favourite_colour\n"), registry.FormatCSV, d); err == nil ||
		!strings.Contains(err.Error(), "/favourite_colour unknown_field") {
		t.Errorf("bad header: %v", err)
	}

	// Export writes every current record and audits each read.
	var out bytes.Buffer
	n, err := s.Export(ctx, "population", &out, registry.Access{Actor: "officer:mlsp-1", Purpose: "statistics"})
	if err != nil || n != 4 || strings.Count(out.String(), "\n") != 4 {
		t.Errorf("export %d %v\n%s", n, err, out.String())
	}
	var audited int
	s.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE action = 'registry.population.export' AND subject_iin IS NOT NULL`).Scan(&audited)
	if audited != 4 {
		t.Errorf("export audited %d reads, want 4", audited)
	}
}

func TestImportManyInBatches(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	d, _ := s.Definition("population")
	var b strings.Builder
	b.WriteString("iin,last_name,first_name,birth_date,sex\n")
	const n = 12000
	for _, id := range testIINs(n) {
		fmt.Fprintf(&b, "%s,Фамилия,Имя,1985-06-15,female\n", id)
	}
	rows, _ := registry.NewRowReader(strings.NewReader(b.String()), registry.FormatCSV, d)
	var calls int
	rep, err := s.Import(ctx, "population", rows, registry.ImportOptions{Actor: "a", Basis: "b", Progress: func(registry.ImportReport) { calls++ }})
	if err != nil || rep.Imported != n || calls != 2 {
		t.Fatalf("read %d imported %d rejected %d %v, %d progress calls", rep.Read, rep.Imported, rep.Rejected, err, calls)
	}
}

func FuzzRowReader(f *testing.F) {
	set, _, err := registry.LoadSet(os.DirFS("../../registries"), nil)
	if err != nil {
		f.Fatal(err)
	}
	d := set.Registries["population"]
	f.Add([]byte("iin,last_name\n900101300017,\"A\n"), true)
	f.Add([]byte("iin,children_iins\n900101300017,\"[\"\"1\"\"]\"\n"), true)
	f.Add([]byte("{\"iin\":\"900101300017\"}\n\xff\n[]\n"), false)
	f.Fuzz(func(t *testing.T, in []byte, csv bool) {
		format := registry.FormatNDJSON
		if csv {
			format = registry.FormatCSV
		}
		rows, err := registry.NewRowReader(bytes.NewReader(in), format, d)
		if err != nil {
			return
		}
		for i := 0; i < 10000; i++ {
			row, err := rows.Next()
			if err != nil {
				return
			}
			if len(row.Problems) == 0 {
				d.Check(row.Data, set.Classifiers)
			}
		}
	})
}

// testIINs returns n distinct valid synthetic IINs.
func testIINs(n int) []string {
	out := make([]string, 0, n)
	day := mustDate("1980-01-01")
	for serial := 9000; len(out) < n; serial++ {
		if serial > 9999 {
			serial, day = 9000, day.AddDate(0, 0, 1)
		}
		id, err := iin.New(day, iin.SexFemale, serial)
		if err == nil {
			out = append(out, id.String())
		}
	}
	return out
}
