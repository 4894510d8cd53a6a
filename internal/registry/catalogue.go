package registry

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/web"
)

// Consumer is a service (or an exchange service) that reads a registry:
// one data source of its definition.
type Consumer struct {
	Service    string   `json:"service"`
	Version    int      `json:"version"`
	Registry   string   `json:"registry"`
	DataSource string   `json:"data_source"`
	Basis      string   `json:"basis,omitempty"`
	Consent    bool     `json:"consent,omitempty"`
	Prefill    []string `json:"prefill,omitempty"` // attributes shown to the applicant
}

// ConsumerSource lists the consumers of the registries: the composition
// root wires it to the service catalogue's compiled plans, so this package
// needs not know services.
type ConsumerSource func(ctx context.Context) ([]Consumer, error)

// SetConsumers sets where the catalogue learns who reads the registries.
func (s *Store) SetConsumers(f ConsumerSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consumers = f
}

// CatalogueEntry is one attribute of one registry in the data catalogue.
type CatalogueEntry struct {
	Registry   string    `json:"registry"`
	Attribute  string    `json:"attribute"`
	Title      i18n.Text `json:"title"`
	Owner      string    `json:"owner"`
	Personal   string    `json:"personal"`
	Fact       string    `json:"fact,omitempty"`
	Classifier string    `json:"classifier,omitempty"`
	// Master is where the fact is mastered: "registry.attribute", this
	// attribute itself when it is authoritative here.
	Master        string `json:"master"`
	Authoritative bool   `json:"authoritative"`
	// Copies are the attributes of other registries that copy this one.
	Copies []string `json:"copies"`
	// Consumers are the services that read this attribute's registry.
	Consumers []Consumer `json:"consumers"`
}

// Catalogue lists every attribute of every registry with its master, its
// copies, its personal-data class and its consumers.
func (s *Store) Catalogue(ctx context.Context) ([]CatalogueEntry, error) {
	s.mu.RLock()
	src := s.consumers
	s.mu.RUnlock()
	var consumers []Consumer
	if src != nil {
		var err error
		if consumers, err = src(ctx); err != nil {
			return nil, err
		}
	}
	byRegistry := map[string][]Consumer{}
	for _, c := range consumers {
		byRegistry[c.Registry] = append(byRegistry[c.Registry], c)
	}
	defs := s.Definitions()
	copies := map[string][]string{}
	for _, d := range defs {
		for _, a := range d.Attributes {
			if a.Master != "" {
				copies[a.Master] = append(copies[a.Master], d.Name+"."+a.Name)
			}
		}
	}
	var out []CatalogueEntry
	for _, d := range defs {
		for _, a := range d.Attributes {
			id := d.Name + "." + a.Name
			e := CatalogueEntry{Registry: d.Name, Attribute: a.Name, Title: a.Title, Owner: d.Owner, Personal: a.Personal,
				Fact: a.Fact, Classifier: a.Classifier, Master: a.Master, Authoritative: a.Master == "",
				Copies: copies[id], Consumers: byRegistry[d.Name]}
			if e.Authoritative {
				e.Master = id
			}
			if e.Copies == nil {
				e.Copies = []string{}
			}
			if e.Consumers == nil {
				e.Consumers = []Consumer{}
			}
			sort.Strings(e.Copies)
			out = append(out, e)
		}
	}
	return out, nil
}

// Where answers "where is X mastered and who reads it": the catalogue
// entries whose attribute name, fact or title (in any language) contains
// q, case-insensitively.
func (s *Store) Where(ctx context.Context, q string) ([]CatalogueEntry, error) {
	all, err := s.Catalogue(ctx)
	if err != nil {
		return nil, err
	}
	q = strings.ToLower(strings.TrimSpace(q))
	var out []CatalogueEntry
	for _, e := range all {
		hay := strings.ToLower(strings.Join([]string{e.Registry + "." + e.Attribute, e.Fact, e.Title.KK, e.Title.RU, e.Title.EN}, "\x00"))
		if q == "" || strings.Contains(hay, q) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Duplicate is one fact mastered in more than one registry.
type Duplicate struct {
	Fact string `json:"fact"`
	// Masters are the authoritative attributes stating it,
	// "registry.attribute", in at least two registries.
	Masters []string `json:"masters"`
}

// Duplicates reports the facts mastered twice: authoritative attributes of
// two or more registries that declare the same fact.
func (s *Store) Duplicates() []Duplicate {
	byFact := map[string][]string{}
	regs := map[string]map[string]bool{}
	for _, d := range s.Definitions() {
		for _, a := range d.Attributes {
			if a.Master != "" || a.Fact == "" {
				continue
			}
			f := strings.ToLower(strings.TrimSpace(a.Fact))
			byFact[f] = append(byFact[f], d.Name+"."+a.Name)
			if regs[f] == nil {
				regs[f] = map[string]bool{}
			}
			regs[f][d.Name] = true
		}
	}
	out := []Duplicate{}
	for _, f := range sortedKeys(byFact) {
		if len(regs[f]) > 1 {
			m := byFact[f]
			slices.Sort(m)
			out = append(out, Duplicate{Fact: f, Masters: m})
		}
	}
	return out
}

// CatalogueRoutes mounts the data catalogue API. The catalogue describes
// data, it holds none: it is public.
func (s *Store) CatalogueRoutes(srv *web.Server) {
	srv.HandleFunc("GET /api/v1/catalogue/attributes", func(w http.ResponseWriter, r *http.Request) error {
		out, err := s.Where(r.Context(), r.URL.Query().Get("q"))
		if err != nil {
			return err
		}
		if out == nil {
			out = []CatalogueEntry{}
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"attributes": out})
		return nil
	})
	srv.HandleFunc("GET /api/v1/catalogue/duplicates", func(w http.ResponseWriter, r *http.Request) error {
		web.WriteJSON(w, http.StatusOK, map[string]any{"duplicates": s.Duplicates()})
		return nil
	})
}
