// Package i18n is the one message catalogue for user-facing text, in Kazakh
// (the state language, always first and the default), Russian and English,
// and the choice of language for a request.
//
// Texts live in messages/{kk,ru,en}.json and in one file per area,
// messages/<area>.{kk,ru,en}.json (e.g. portal-officer.kk.json), so that each
// part of the product keeps its texts together: flat maps from key to text
// with optional fmt verbs. A key defined in two files is a load error. A test fails when a key is missing or empty in any
// language or when the verbs of a key differ between languages.
//
// May import: the standard library and golang.org/x/text/language.
package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"golang.org/x/text/language"
)

// Lang is a supported language.
type Lang string

// The supported languages, Kazakh first.
const (
	KK Lang = "kk"
	RU Lang = "ru"
	EN Lang = "en"
)

// Supported lists the languages in the order they are offered.
var Supported = []Lang{KK, RU, EN}

// Name is a language's own name, for the language switch.
func (l Lang) Name() string {
	switch l {
	case RU:
		return "Русский"
	case EN:
		return "English"
	default:
		return "Қазақша"
	}
}

//go:embed messages/*.json
var files embed.FS

var catalogue = mustLoad()

func mustLoad() map[Lang]map[string]string {
	out := make(map[Lang]map[string]string, len(Supported))
	for _, l := range Supported {
		names, _ := fs.Glob(files, "messages/*."+string(l)+".json")
		names = append([]string{"messages/" + string(l) + ".json"}, names...)
		all := map[string]string{}
		for _, name := range names {
			b, err := files.ReadFile(name)
			if err != nil {
				panic(fmt.Sprintf("i18n: missing catalogue for %s: %v", l, err))
			}
			m := map[string]string{}
			if err := json.Unmarshal(b, &m); err != nil {
				panic(fmt.Sprintf("i18n: catalogue %s is not valid JSON: %v", name, err))
			}
			for k, v := range m {
				if _, dup := all[k]; dup {
					panic(fmt.Sprintf("i18n: key %q is defined twice (again in %s)", k, name))
				}
				all[k] = v
			}
		}
		out[l] = all
	}
	return out
}

// T returns the text for key in lang, formatted with args. A missing key (a
// bug the catalogue test prevents) falls back to Kazakh, then to the key.
func T(lang Lang, key string, args ...any) string {
	s, ok := catalogue[lang][key]
	if !ok {
		if s, ok = catalogue[KK][key]; !ok {
			return key
		}
	}
	if len(args) == 0 {
		return s
	}
	return fmt.Sprintf(s, args...)
}

// Has reports whether key exists (in Kazakh, and so, by the test, in all).
func Has(key string) bool {
	_, ok := catalogue[KK][key]
	return ok
}

// Keys returns the keys of lang, sorted.
func Keys(lang Lang) []string {
	keys := make([]string, 0, len(catalogue[lang]))
	for k := range catalogue[lang] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Parse returns the supported language named by s ("kk", "ru", "en", or the
// legacy alias "kz"), and false for anything else.
func Parse(s string) (Lang, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "kk", "kz", "kk-kz":
		return KK, true
	case "ru", "ru-kz", "ru-ru":
		return RU, true
	case "en":
		return EN, true
	}
	return "", false
}

var matcher = language.NewMatcher([]language.Tag{language.Kazakh, language.Russian, language.English})

// Negotiate picks the language for a request: the user's explicit choice
// (setting or cookie) when valid, else the best match of Accept-Language,
// else Kazakh.
func Negotiate(choice, acceptLanguage string) Lang {
	if l, ok := Parse(choice); ok {
		return l
	}
	// "kz" is a country code that legacy clients send as a language.
	acceptLanguage = strings.ReplaceAll(strings.ToLower(acceptLanguage), "kz-", "kk-")
	if acceptLanguage == "kz" || strings.HasPrefix(acceptLanguage, "kz,") || strings.HasPrefix(acceptLanguage, "kz;") {
		acceptLanguage = "kk" + acceptLanguage[2:]
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return KK
	}
	_, idx, conf := matcher.Match(tags...)
	if conf == language.No {
		return KK
	}
	return Supported[idx]
}
