package registry

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzEncodeRecord: the fast encoding means what encoding/json's means.
func FuzzEncodeRecord(f *testing.F) {
	for _, s := range []string{"", "Сейітов", "a\"b\\c\n\t\x01", "\xff\xfe", "</script>&", "\u2028"} {
		f.Add(s, 12.5, true)
	}
	f.Fuzz(func(t *testing.T, s string, n float64, b bool) {
		rec := map[string]any{"s": s, s: n, "b": b, "nil": nil, "list": []any{s, n}, "int": 42}
		fast, ferr := encodeRecord(nil, rec)
		slow, serr := json.Marshal(rec)
		if (ferr == nil) != (serr == nil) {
			t.Fatalf("errors differ: %v %v", ferr, serr)
		}
		if ferr != nil {
			return
		}
		var a, c any
		if err := json.Unmarshal(fast, &a); err != nil {
			t.Fatalf("not JSON: %q: %v", fast, err)
		}
		json.Unmarshal(slow, &c)
		if !reflect.DeepEqual(a, c) {
			t.Fatalf("differ:\n%s\n%s", fast, slow)
		}
	})
}
