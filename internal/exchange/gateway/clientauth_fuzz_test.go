package gateway

import (
	"strings"
	"testing"
)

// FuzzParseClientCerts: any file content gives certificates or an error
// naming a line, never a panic; paths stay inside the given directory's
// reach only as the file says (the fuzzer's directory is empty).
func FuzzParseClientCerts(f *testing.F) {
	for _, s := range []string{
		"KZ/GOV/100/portal sha256:" + strings.Repeat("ab", 32),
		"# comment\n\nKZ/GOV/100/portal portal.pem",
		"KZ/GOV/100 x", "a b c", "KZ/GOV/100/portal sha256:zz",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		certs, err := parseClientCerts(strings.NewReader(content), dir)
		if err == nil {
			for id, fps := range certs {
				if len(fps) == 0 || strings.Count(id, "/") != 3 {
					t.Fatalf("accepted %q: %v", content, certs)
				}
			}
		} else if !strings.HasPrefix(err.Error(), "line ") && !strings.HasPrefix(err.Error(), "client certificates") {
			t.Fatalf("error names no line: %v", err)
		}
	})
}
