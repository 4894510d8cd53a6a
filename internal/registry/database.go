package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/outbox"
)

// Roles that may publish and archive registry definitions through the API.
const (
	// PlatformAdministratorRole is the platform administrators' officer role
	// (the same as internal/portal/admin's): they manage every registry.
	PlatformAdministratorRole = "platform-administrator"
	// RegistryAdministratorRole is held by an agency's officers who manage
	// the definitions of the registries their agency owns.
	RegistryAdministratorRole = "registry-administrator"
)

// TopicDefinitionChanged is the outbox topic of a definition published or
// a registry archived.
const TopicDefinitionChanged = "registry.definition.changed"

// ErrArchived refuses a write to an archived registry.
var ErrArchived = errors.New("the registry is archived: it takes no new records or changes")

// WatchEvery is how often a node looks for definitions published or
// registries archived by another node.
const WatchEvery = time.Second

// Agency is what the registries need to know of an agency.
type Agency struct {
	Name  i18n.Text
	Roles []string
}

// AgencySource lists the agencies by id; the composition root wires
// internal/agency.
type AgencySource func(ctx context.Context) (map[string]Agency, error)

// Database is a registry as a numbered database: its stable id, its state
// and who changed it last.
type Database struct {
	ID         int64
	Name       string
	CreatedAt  time.Time
	ArchivedAt *time.Time
	ArchivedBy string
	// ModifiedAt and ModifiedBy are of the newest definition version
	// ("file" for the embedded definitions) or of the archiving.
	ModifiedAt time.Time
	ModifiedBy string
}

// databaseCatalog is the numbered registries as this node last read them.
type databaseCatalog struct {
	mu       sync.RWMutex
	byName   map[string]Database
	revision int64
	agencies AgencySource
	refresh  sync.Mutex // one reload at a time
}

// SetAgencies lets publishing check owners and roles, and names the
// agencies in the GovStack Database API; nil (the default) checks nothing
// and names agencies by their id.
func (s *Store) SetAgencies(f AgencySource) {
	s.dbs.mu.Lock()
	s.dbs.agencies = f
	s.dbs.mu.Unlock()
}

// Agencies returns the agencies, or nil when no source is wired.
func (s *Store) Agencies(ctx context.Context) (map[string]Agency, error) {
	s.dbs.mu.RLock()
	f := s.dbs.agencies
	s.dbs.mu.RUnlock()
	if f == nil {
		return nil, nil
	}
	return f(ctx)
}

// Databases returns the numbered registries, by id.
func (s *Store) Databases() []Database {
	s.dbs.mu.RLock()
	defer s.dbs.mu.RUnlock()
	out := make([]Database, 0, len(s.dbs.byName))
	for _, d := range s.dbs.byName {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Database) int { return compareInt(a.ID, b.ID) })
	return out
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DatabaseByID returns the registry numbered id.
func (s *Store) DatabaseByID(id int64) (Database, bool) {
	s.dbs.mu.RLock()
	defer s.dbs.mu.RUnlock()
	for _, d := range s.dbs.byName {
		if d.ID == id {
			return d, true
		}
	}
	return Database{}, false
}

// DatabaseOf returns the number and state of the registry name.
func (s *Store) DatabaseOf(name string) (Database, bool) {
	s.dbs.mu.RLock()
	defer s.dbs.mu.RUnlock()
	d, ok := s.dbs.byName[name]
	return d, ok
}

// databaseLock serialises numbering and publishing across nodes ("ortaqreg").
const databaseLock int64 = 0x6f72746171_726567

// noteDatabase gives the registry its number if it has none, and marks a
// change (a new definition version) for the other nodes when changed.
func noteDatabase(ctx context.Context, tx pgx.Tx, name string, now time.Time, changed bool) (int64, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, databaseLock); err != nil {
		return 0, fmt.Errorf("lock registry numbers: %w", err)
	}
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO registry_database (id, name, created_at, revision)
		SELECT coalesce(max(id), 0) + 1, $1, $2, nextval('registry_database_revision') FROM registry_database
		ON CONFLICT (name) DO UPDATE SET revision = CASE WHEN $3 THEN nextval('registry_database_revision') ELSE registry_database.revision END
		RETURNING id`, name, now, changed).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("number registry %s: %w", name, err)
	}
	return id, nil
}

// checkWritable refuses writes to an archived registry. The key-share row
// lock makes archiving (SELECT ... FOR UPDATE) wait for the writes under
// way, and writes after it see it; publishing a version (which updates
// the row's revision, not its key) does not wait for writes.
func checkWritable(ctx context.Context, tx pgx.Tx, name string) error {
	var archived bool
	err := tx.QueryRow(ctx, `SELECT archived_at IS NOT NULL FROM registry_database WHERE name = $1 FOR KEY SHARE`, name).Scan(&archived)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // served from files without being installed (tests, tools)
	}
	if err != nil {
		return fmt.Errorf("read registry state: %w", err)
	}
	if archived {
		return ErrArchived
	}
	return nil
}

// Refresh reads the numbered registries and serves the newest installed
// definition version of each that is newer than the one served: published
// through the API on any node, or installed from a newer file.
func (s *Store) Refresh(ctx context.Context) error {
	s.dbs.refresh.Lock()
	defer s.dbs.refresh.Unlock()
	rows, err := s.pool.Query(ctx, `SELECT d.id, d.name, d.created_at, d.archived_at, coalesce(d.archived_by, ''), d.revision,
			v.installed_at, v.installed_by, v.version, v.source
		FROM registry_database d
		LEFT JOIN LATERAL (SELECT installed_at, installed_by, version, source FROM registry_definition
			WHERE name = d.name ORDER BY version DESC LIMIT 1) v ON true`)
	if err != nil {
		return fmt.Errorf("read registries: %w", err)
	}
	type newest struct {
		version int
		source  string
	}
	byName := map[string]Database{}
	defs := map[string]newest{}
	var revision int64
	for rows.Next() {
		var d Database
		var rev int64
		var at *time.Time
		var by, src *string
		var version *int
		if err := rows.Scan(&d.ID, &d.Name, &d.CreatedAt, &d.ArchivedAt, &d.ArchivedBy, &rev, &at, &by, &version, &src); err != nil {
			rows.Close()
			return fmt.Errorf("read registries: %w", err)
		}
		revision = max(revision, rev)
		d.CreatedAt = d.CreatedAt.UTC()
		d.ModifiedAt, d.ModifiedBy = d.CreatedAt, "file"
		if at != nil {
			d.ModifiedAt, d.ModifiedBy = at.UTC(), *by
			defs[d.Name] = newest{*version, *src}
		}
		if d.ArchivedAt != nil {
			t := d.ArchivedAt.UTC()
			d.ArchivedAt = &t
			if t.After(d.ModifiedAt) {
				d.ModifiedAt, d.ModifiedBy = t, d.ArchivedBy
			}
		}
		byName[d.Name] = d
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read registries: %w", err)
	}
	var errs []error
	for _, name := range sortedKeys(defs) {
		n := defs[name]
		if cur, ok := s.Definition(name); ok && cur.Version >= n.version {
			continue
		}
		d, probs := ParseDefinition([]byte(n.source), Env{Classifiers: s.Classifiers()})
		if probs != nil {
			errs = append(errs, fmt.Errorf("registry %s version %d: %s", name, n.version, probs[0].Format(name)))
			continue
		}
		s.useDefinition(d)
	}
	s.dbs.mu.Lock()
	s.dbs.byName, s.dbs.revision = byName, revision
	s.dbs.mu.Unlock()
	return errors.Join(errs...)
}

func (s *Store) useDefinition(d *Definition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.defs[d.Name] = d
}

// Watch reloads the registries whenever another node publishes a
// definition or archives a registry, looking every interval, until ctx
// ends. A failed look is tried again at the next tick.
func (s *Store) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var rev int64
		if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(revision), 0) FROM registry_database`).Scan(&rev); err != nil {
			continue
		}
		s.dbs.mu.RLock()
		seen := s.dbs.revision
		s.dbs.mu.RUnlock()
		if rev != seen {
			_ = s.Refresh(ctx)
		}
	}
}

// DefinitionProblem is one thing wrong with a definition published through
// the API: the field of the request at fault, the lint code and what is
// wrong.
type DefinitionProblem struct {
	Path    string `json:"path"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
}

// DefinitionError is a definition refused by publishing.
type DefinitionError struct{ Problems []DefinitionProblem }

func (e *DefinitionError) Error() string {
	s := "invalid registry definition:"
	for _, p := range e.Problems {
		s += " " + p.Path + " " + p.Code + ";"
	}
	return s
}

// Publisher is who publishes or archives, for the audit trail.
type Publisher struct {
	Principal identity.Principal
	RequestID string
}

// CanManage reports whether p may publish definitions of, and archive,
// the registries of agency owner: a platform administrator, or an officer
// of owner with the registry-administrator role.
func CanManage(p identity.Principal, owner string) bool {
	if p.Kind != identity.Officer {
		return false
	}
	return slices.Contains(p.Roles, PlatformAdministratorRole) || p.HasRole(owner, RegistryAdministratorRole)
}

// ManagesAny reports whether p may manage some registry: the callers who
// are told "no such registry" rather than "forbidden".
func ManagesAny(p identity.Principal) bool {
	return p.Kind == identity.Officer && (slices.Contains(p.Roles, PlatformAdministratorRole) || slices.Contains(p.Roles, RegistryAdministratorRole))
}

// DefinitionChanged is the payload of registry.definition.changed.
type DefinitionChanged struct {
	Registry string `json:"registry"`
	ID       int64  `json:"id"`
	Version  int    `json:"version"`
	Change   string `json:"change"` // "published" or "archived"
	Actor    string `json:"actor"`
}

// Build makes the next version of a registry's definition from the newest
// one installed (nil for a new registry); it returns a *DefinitionError for
// a bad definition, or any other error to refuse.
type Build func(prev *Definition, next int) (*Definition, error)

// Publish installs the next version of registry name, built by build, and
// serves it: on this node at once, on the others within [WatchEvery]. A
// version must keep every record valid: it may not drop or retype an
// attribute that records hold, change the key of a registry with records,
// or require an attribute that current records lack. The change is audited
// and announced on registry.definition.changed.
func (s *Store) Publish(ctx context.Context, name string, by Publisher, build Build) (*Definition, int64, error) {
	now := s.clock.Now()
	var d *Definition
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, databaseLock); err != nil {
			return err
		}
		prev, err := installedDefinition(ctx, tx, name)
		if err != nil {
			return err
		}
		next := 1
		if prev != nil {
			next = prev.Version + 1
			if err := checkWritable(ctx, tx, name); err != nil {
				return err
			}
		}
		if d, err = build(prev, next); err != nil {
			return err
		}
		if d.Name != name || d.Version != next {
			return fmt.Errorf("publish %s version %d: built %s version %d", name, next, d.Name, d.Version)
		}
		if probs, err := keepsRecordsValid(ctx, tx, prev, d); err != nil {
			return err
		} else if len(probs) > 0 {
			return &DefinitionError{probs}
		}
		j, err := json.Marshal(d)
		if err != nil {
			return err
		}
		actor := by.Principal.Actor()
		if _, err := tx.Exec(ctx, `INSERT INTO registry_definition (name, version, owner, source, definition, installed_at, installed_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, d.Name, d.Version, d.Owner, string(d.Source), j, now, actor); err != nil {
			return fmt.Errorf("install registry %s: %w", d.Name, err)
		}
		if id, err = noteDatabase(ctx, tx, d.Name, now, true); err != nil {
			return err
		}
		return s.announce(ctx, tx, now, by, "registry.definition.published", DefinitionChanged{d.Name, id, d.Version, "published", actor})
	})
	if err != nil {
		return nil, 0, err
	}
	s.useDefinition(d)
	// The publication stands; a registry another node broke would not be
	// served here either way.
	_ = s.Refresh(ctx)
	if err := s.ensureIndexes(ctx, d); err != nil {
		return d, id, fmt.Errorf("published, but: %w", err)
	}
	return d, id, nil
}

func (s *Store) announce(ctx context.Context, tx pgx.Tx, now time.Time, by Publisher, action string, ev DefinitionChanged) error {
	if err := audit.Record(ctx, tx, audit.Event{At: now, Actor: ev.Actor, Action: action,
		Object:  fmt.Sprintf("registry:%s@%d (database %d)", ev.Registry, ev.Version, ev.ID),
		Purpose: "registry definition management", RequestID: by.RequestID}); err != nil {
		return err
	}
	return outbox.Emit(ctx, tx, now, TopicDefinitionChanged, ev.Registry, ev)
}

// installedDefinition reads the newest installed version of a registry, or
// nil.
func installedDefinition(ctx context.Context, tx pgx.Tx, name string) (*Definition, error) {
	var j []byte
	var src string
	err := tx.QueryRow(ctx, `SELECT definition, source FROM registry_definition WHERE name = $1 ORDER BY version DESC LIMIT 1`, name).Scan(&j, &src)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read registry %s: %w", name, err)
	}
	d := &Definition{}
	if err := json.Unmarshal(j, d); err != nil {
		return nil, fmt.Errorf("read registry %s: %w", name, err)
	}
	d.Source = []byte(src)
	return d, nil
}

// keepsRecordsValid names what in next would make the records of prev
// invalid. History counts: an as-of read shows old versions too.
func keepsRecordsValid(ctx context.Context, tx pgx.Tx, prev, next *Definition) ([]DefinitionProblem, error) {
	if prev == nil {
		return nil, nil
	}
	held := func(attr string) (bool, error) {
		var yes bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM registry_record_version WHERE registry = $1 AND data ? $2)`, prev.Name, attr).Scan(&yes)
		return yes, err
	}
	var out []DefinitionProblem
	path := func(a string) string { return "/schema/properties/" + pointerToken(a) }
	keyed, err := held(prev.Key.Attribute)
	if err != nil {
		return nil, err
	}
	if keyed && next.Key.Attribute != prev.Key.Attribute {
		out = append(out, DefinitionProblem{Path: path(next.Key.Attribute), Code: "attribute.in_use",
			Message: fmt.Sprintf("the registry has records keyed by %q: the key cannot change", prev.Key.Attribute)})
	}
	for _, pa := range prev.Attributes {
		na, kept := next.Attr(pa.Name)
		if kept && fmt.Sprint(na.Schema["type"]) == fmt.Sprint(pa.Schema["type"]) {
			continue
		}
		used, err := held(pa.Name)
		if err != nil {
			return nil, err
		}
		if !used {
			continue
		}
		if !kept {
			out = append(out, DefinitionProblem{Path: path(pa.Name), Code: "attribute.in_use",
				Message: fmt.Sprintf("records hold attribute %q: it cannot be dropped (records and their history must stay valid)", pa.Name)})
		} else {
			out = append(out, DefinitionProblem{Path: path(pa.Name) + "/type", Code: "attribute.in_use",
				Message: fmt.Sprintf("records hold attribute %q as %v: it cannot become %v (records and their history must stay valid)", pa.Name, pa.Schema["type"], na.Schema["type"])})
		}
	}
	for _, na := range next.Attributes {
		if !na.Required || na.Name == next.Key.Attribute {
			continue
		}
		if pa, ok := prev.Attr(na.Name); ok && pa.Required {
			continue
		}
		var lacking bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM (`+currentVersions+`) cur WHERE op <> 'cancel' AND NOT data ? $3)`,
			prev.Name, "", na.Name).Scan(&lacking)
		if err != nil {
			return nil, err
		}
		if lacking {
			out = append(out, DefinitionProblem{Path: "/schema/required", Code: "attribute.in_use",
				Message: fmt.Sprintf("current records lack attribute %q: it cannot become required", na.Name)})
		}
	}
	return out, nil
}

func pointerToken(s string) string {
	return pointer([]string{s})[1:]
}

// Archive archives the registry numbered id: it takes no new records or
// changes, its records and history stay readable, and nothing is deleted.
// Archiving an archived registry changes nothing. authorize sees the
// owner agency and may refuse.
func (s *Store) Archive(ctx context.Context, id int64, by Publisher, authorize func(owner string) error) error {
	now := s.clock.Now()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var name string
		var archived bool
		err := tx.QueryRow(ctx, `SELECT name, archived_at IS NOT NULL FROM registry_database WHERE id = $1 FOR UPDATE`, id).Scan(&name, &archived)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrUnknownRegistry
		}
		if err != nil {
			return fmt.Errorf("read registry %d: %w", id, err)
		}
		d, err := installedDefinition(ctx, tx, name)
		if err != nil {
			return err
		}
		owner := ""
		version := 0
		if d != nil {
			owner, version = d.Owner, d.Version
		}
		if err := authorize(owner); err != nil {
			return err
		}
		if archived {
			return nil
		}
		actor := by.Principal.Actor()
		if _, err := tx.Exec(ctx, `UPDATE registry_database SET archived_at = $2, archived_by = $3,
			revision = nextval('registry_database_revision') WHERE id = $1`, id, now, actor); err != nil {
			return fmt.Errorf("archive registry %s: %w", name, err)
		}
		return s.announce(ctx, tx, now, by, "registry.archived", DefinitionChanged{name, id, version, "archived", actor})
	})
	if err != nil {
		return err
	}
	_ = s.Refresh(ctx)
	return nil
}
