package demo

import (
	"context"
	"io"
	"time"

	"github.com/ortaq/ortaq/internal/agency"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/service"
)

// Seed is what the demo needs to write to.
type Seed struct {
	Agencies *agency.Store
	// Registries get the demo registries: every citizen in the population
	// and addresses registries, the first RegistryPeople in all of them.
	Registries *registry.Store
	Services   *service.Catalogue
	Keys       interface {
		EnsureKey(ctx context.Context, agency string) (string, error)
	}
}

// Result tells what a seeded platform offers to try.
type Result struct {
	Citizens int64
	// WithAddress gets a certificate; WithoutAddress is refused.
	WithAddress    iin.IIN
	WithoutAddress iin.IIN
}

// PopulationSeed fixes the synthetic population so demo IINs stay the same.
const PopulationSeed = 20261123

// Agencies are the demo's state bodies.
func Agencies() []agency.Agency {
	return []agency.Agency{
		{ID: "mia", BIN: mustBIN(time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC), 90001), Name: i18n.Text{
			KK: "Қазақстан Республикасы Ішкі істер министрлігі",
			RU: "Министерство внутренних дел Республики Казахстан",
			EN: "Ministry of Internal Affairs of the Republic of Kazakhstan",
		}},
		{ID: "mdai", BIN: mustBIN(time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC), 90002), Name: i18n.Text{
			KK: "Қазақстан Республикасы Цифрлық даму, инновациялар және аэроғарыш өнеркәсібі министрлігі",
			RU: "Министерство цифрового развития, инноваций и аэрокосмической промышленности Республики Казахстан",
			EN: "Ministry of Digital Development, Innovations and Aerospace Industry of the Republic of Kazakhstan",
		}},
		// Civil registration (АХАТ/РАГС) is a function of the Ministry of Justice.
		{ID: "moj", BIN: mustBIN(time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC), 90003), Name: i18n.Text{
			KK: "Қазақстан Республикасының Әділет министрлігі",
			RU: "Министерство юстиции Республики Казахстан",
			EN: "Ministry of Justice of the Republic of Kazakhstan",
		}},
		// Social benefits and pensions.
		{ID: "mlsp", BIN: mustBIN(time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC), 90004), Name: i18n.Text{
			KK: "Қазақстан Республикасының Еңбек және халықты әлеуметтік қорғау министрлігі",
			RU: "Министерство труда и социальной защиты населения Республики Казахстан",
			EN: "Ministry of Labour and Social Protection of the Population of the Republic of Kazakhstan",
		}},
		// Keeps the special records (criminal records) and issues certificates from them.
		{ID: "gpo", BIN: mustBIN(time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC), 90005), Name: i18n.Text{
			KK: "Қазақстан Республикасы Бас прокуратурасының Құқықтық статистика және арнайы есепке алу жөніндегі комитеті",
			RU: "Комитет по правовой статистике и специальным учетам Генеральной прокуратуры Республики Казахстан",
			EN: "Committee on Legal Statistics and Special Accounts of the Prosecutor General's Office of the Republic of Kazakhstan",
		}},
		// Registers individual entrepreneurs and taxpayers.
		{ID: "mf", BIN: mustBIN(time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC), 90006), Name: i18n.Text{
			KK: "Қазақстан Республикасы Қаржы министрлігінің Мемлекеттік кірістер комитеті",
			RU: "Комитет государственных доходов Министерства финансов Республики Казахстан",
			EN: "State Revenue Committee of the Ministry of Finance of the Republic of Kazakhstan",
		}},
		// Preschool education; the kindergarten queues themselves are kept by
		// the education departments of local akimats.
		{ID: "moe", BIN: mustBIN(time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC), 90007), Name: i18n.Text{
			KK: "Қазақстан Республикасының Оқу-ағарту министрлігі",
			RU: "Министерство просвещения Республики Казахстан",
			EN: "Ministry of Enlightenment of the Republic of Kazakhstan",
		}},
	}
}

func mustBIN(t time.Time, serial int) iin.BIN {
	b, err := iin.NewBIN(t, '4', '0', serial)
	if err != nil {
		// Try neighbours: some serials have no control digit.
		for s := serial + 1; err != nil; s++ {
			b, err = iin.NewBIN(t, '4', '0', s)
		}
	}
	return b
}

// Run seeds everything, printing progress to out. population is the number
// of synthetic citizens to create when the registry is empty.
func Run(ctx context.Context, s Seed, population int, out io.Writer) (Result, error) {
	for _, a := range Agencies() {
		a.Roles = Roles()[a.ID]
		if err := s.Agencies.Save(ctx, a); err != nil {
			return Result{}, err
		}
		if _, err := s.Keys.EnsureKey(ctx, a.ID); err != nil {
			return Result{}, err
		}
	}
	if err := publishServices(ctx, s.Services, out); err != nil {
		return Result{}, err
	}
	citizens := Population(population, PopulationSeed)
	if err := LoadRegistries(ctx, s.Registries, citizens, out); err != nil {
		return Result{}, err
	}
	counts, err := s.Registries.Counts(ctx)
	if err != nil {
		return Result{}, err
	}
	count := counts[registry.PopulationRegistry]
	r := Result{Citizens: count}
	for _, c := range citizens {
		if HasAddress(c) && r.WithAddress == "" {
			r.WithAddress = c.IIN
		}
		if !HasAddress(c) && r.WithoutAddress == "" {
			r.WithoutAddress = c.IIN
		}
	}
	return r, nil
}
