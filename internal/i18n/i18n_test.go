package i18n

import (
	"regexp"
	"testing"
)

var verb = regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z%]`)

// TestCatalogueComplete fails when a key exists in one language and not in
// another, when a text is empty, or when languages disagree on the verbs.
func TestCatalogueComplete(t *testing.T) {
	all := map[string]bool{}
	for _, l := range Supported {
		for _, k := range Keys(l) {
			all[k] = true
		}
	}
	if len(all) == 0 {
		t.Fatal("catalogue is empty")
	}
	for k := range all {
		var want []string
		for i, l := range Supported {
			s, ok := catalogue[l][k]
			if !ok {
				t.Errorf("key %q is missing in %s", k, l)
				continue
			}
			if s == "" {
				t.Errorf("key %q is empty in %s", k, l)
			}
			got := verb.FindAllString(s, -1)
			if i == 0 {
				want = got
			} else if len(got) != len(want) {
				t.Errorf("key %q: %s has verbs %v, kk has %v", k, l, got, want)
			}
		}
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		choice, accept string
		want           Lang
	}{
		{"", "", KK},
		{"", "ru-KZ,ru;q=0.9", RU},
		{"", "en-US,en;q=0.9", EN},
		{"", "de-DE,de;q=0.9", KK},
		{"", "de-DE,ru;q=0.5", RU},
		{"", "kk-KZ,ru;q=0.5", KK},
		{"", "kz", KK},
		{"", "kz-KZ,en;q=0.3", KK},
		{"", "ru;q=0.2,en;q=0.9", EN},
		{"", ";;;garbage===", KK},
		{"en", "ru", EN},
		{"xx", "ru", RU},
		{"KZ", "en", KK},
	}
	for _, tt := range tests {
		if got := Negotiate(tt.choice, tt.accept); got != tt.want {
			t.Errorf("Negotiate(%q, %q) = %s; want %s", tt.choice, tt.accept, got, tt.want)
		}
	}
}

func FuzzNegotiate(f *testing.F) {
	f.Add("", "ru-KZ,ru;q=0.9")
	f.Add("kz", "")
	f.Add("", "kz;q=1,*")
	f.Fuzz(func(t *testing.T, choice, accept string) {
		got := Negotiate(choice, accept)
		if got != KK && got != RU && got != EN {
			t.Fatalf("Negotiate returned unsupported %q", got)
		}
	})
}

func TestT(t *testing.T) {
	if got := T(EN, "no.such.key"); got != "no.such.key" {
		t.Errorf("T(missing) = %q; want the key", got)
	}
}
