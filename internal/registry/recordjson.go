package registry

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// encodeRecord encodes a record for the database's jsonb column. Records
// read from CSV and most from NDJSON are flat: strings, numbers, booleans
// and nulls, which it writes directly; anything else goes through
// encoding/json. Keys are not sorted (jsonb orders them itself), which with
// the missing reflection is most of what json.Marshal costs an import.
func encodeRecord(buf []byte, rec map[string]any) ([]byte, error) {
	buf = append(buf, '{')
	first := true
	for k, v := range rec {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		var ok bool
		if buf, ok = appendJSONString(buf, k); !ok {
			return json.Marshal(rec)
		}
		buf = append(buf, ':')
		switch v := v.(type) {
		case string:
			if buf, ok = appendJSONString(buf, v); !ok {
				return json.Marshal(rec)
			}
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return json.Marshal(rec) // which refuses it
			}
			buf = strconv.AppendFloat(buf, v, 'g', -1, 64)
		case int:
			buf = strconv.AppendInt(buf, int64(v), 10)
		case int64:
			buf = strconv.AppendInt(buf, v, 10)
		case bool:
			buf = strconv.AppendBool(buf, v)
		case nil:
			buf = append(buf, "null"...)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			buf = append(buf, b...)
		}
	}
	return append(buf, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; ok is false when s is not
// valid UTF-8 (encoding/json then decides what to do with it).
func appendJSONString(buf []byte, s string) ([]byte, bool) {
	if !utf8.ValidString(s) {
		return buf, false
	}
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"'), true
}
