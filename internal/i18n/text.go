package i18n

// Text is one text in every supported language, as service and registry
// definitions carry it.
type Text struct {
	KK string `json:"kk"`
	RU string `json:"ru"`
	EN string `json:"en"`
}

// In returns the text in lang, falling back to Kazakh, then Russian.
func (t Text) In(lang Lang) string {
	var s string
	switch lang {
	case RU:
		s = t.RU
	case EN:
		s = t.EN
	default:
		s = t.KK
	}
	if s == "" {
		s = t.KK
	}
	if s == "" {
		s = t.RU
	}
	return s
}

// Complete reports whether the text exists in every language.
func (t Text) Complete() bool { return t.KK != "" && t.RU != "" && t.EN != "" }

// Catalogue returns the catalogue entry key as a Text.
func Catalogue(key string, args ...any) Text {
	return Text{KK: T(KK, key, args...), RU: T(RU, key, args...), EN: T(EN, key, args...)}
}
