package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
)

// Record is a person as service definitions see it: the population record
// shape that their expressions and test fixtures use (birth_date as
// YYYY-MM-DD, texts as {kk, ru, en}).
func (p Person) Record() map[string]any {
	rec := map[string]any{
		"iin": p.IIN.String(), "last_name": p.LastName, "first_name": p.FirstName, "patronymic": p.Patronymic,
		"birth_date": p.BirthDate.Format(time.DateOnly), "sex": p.Sex,
	}
	if p.Address != nil {
		text := func(t i18n.Text) map[string]any { return map[string]any{"kk": t.KK, "ru": t.RU, "en": t.EN} }
		rec["address"] = map[string]any{
			"kato": p.Address.KATO, "region": text(p.Address.Region), "locality": text(p.Address.Locality),
			"street": p.Address.Street, "house": p.Address.House, "flat": p.Address.Flat,
		}
	}
	return rec
}

// PersonFromRecord reads a record of that shape back, checking what the
// registry requires.
func PersonFromRecord(rec any) (Person, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return Person{}, err
	}
	var f struct {
		IIN        string   `json:"iin"`
		LastName   string   `json:"last_name"`
		FirstName  string   `json:"first_name"`
		Patronymic string   `json:"patronymic"`
		BirthDate  string   `json:"birth_date"`
		Sex        string   `json:"sex"`
		Address    *Address `json:"address"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return Person{}, err
	}
	id, err := iin.Parse(f.IIN)
	if err != nil {
		return Person{}, fmt.Errorf("iin: %w", err)
	}
	birth, err := time.Parse(time.DateOnly, f.BirthDate)
	if err != nil {
		return Person{}, errors.New("birth_date must be YYYY-MM-DD")
	}
	if strings.TrimSpace(f.LastName) == "" || strings.TrimSpace(f.FirstName) == "" {
		return Person{}, errors.New("last_name and first_name are required")
	}
	sex := f.Sex
	if sex == "" {
		sex = "unknown"
	}
	return Person{IIN: id, LastName: f.LastName, FirstName: f.FirstName, Patronymic: f.Patronymic,
		BirthDate: birth, Sex: sex, Address: f.Address}, nil
}
