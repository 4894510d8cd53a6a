package registry_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/ortaq/ortaq/internal/registry"
)

// BenchmarkParseAndCheck measures the import's work before the database:
// CSV parsing, typing, JSON Schema and IIN checks, per row.
func BenchmarkParseAndCheck(b *testing.B) {
	set, _, err := registry.LoadSet(os.DirFS("../../registries"), nil)
	if err != nil {
		b.Fatal(err)
	}
	d := set.Registries["population"]
	ids := testIINs(10000)
	var buf bytes.Buffer
	buf.WriteString("iin,last_name,first_name,patronymic,birth_date,sex,citizenship,address_kato\n")
	for _, id := range ids {
		fmt.Fprintf(&buf, "%s,Сейітов,Асан,Болатұлы,1980-01-01,male,KZ,711110000\n", id)
	}
	b.ResetTimer()
	for range b.N {
		rows, _ := registry.NewRowReader(bytes.NewReader(buf.Bytes()), registry.FormatCSV, d)
		for {
			row, err := rows.Next()
			if err == io.EOF {
				break
			}
			if p := d.Check(row.Data, set.Classifiers); p != nil {
				b.Fatal(p)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(ids))/b.Elapsed().Seconds(), "rows/s")
}
