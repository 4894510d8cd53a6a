// Package agency owns the list of state agencies that publish services and
// sign documents on the platform.
//
// Owns: table agency.
//
// May import: internal/pg, internal/i18n, internal/iin.
package agency

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the agency capability's part of the database.
func Schema() pg.Schema { return pg.NewSchema("agency", migrations) }

// Agency is a state body.
type Agency struct {
	ID    string    `json:"id"`
	BIN   iin.BIN   `json:"bin"`
	Name  i18n.Text `json:"name"`
	Roles []string  `json:"roles"` // officer roles, named by services' review steps
}

// ErrNotFound means no agency has the id.
var ErrNotFound = errors.New("agency not found")

// Store reads and writes agencies.
type Store struct {
	pool *pgxpool.Pool

	// Names are read on every catalogue listing and portal page, and change
	// rarely: they are kept for a minute (and dropped on Save here).
	mu    sync.Mutex
	names map[string]cachedName
}

type cachedName struct {
	name    i18n.Text
	expires time.Time
}

// nameTTL bounds how stale a name read on another node can be.
const nameTTL = time.Minute

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool, names: map[string]cachedName{}} }

// Save creates or updates an agency.
func (s *Store) Save(ctx context.Context, a Agency) error {
	if !a.Name.Complete() {
		return fmt.Errorf("agency %s: name must exist in kk, ru and en", a.ID)
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO agency (id, bin, name, roles) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET bin = EXCLUDED.bin, name = EXCLUDED.name, roles = EXCLUDED.roles`,
		a.ID, a.BIN.String(), a.Name, append([]string{}, a.Roles...))
	if err != nil {
		return fmt.Errorf("save agency %s: %w", a.ID, err)
	}
	s.mu.Lock()
	delete(s.names, a.ID)
	s.mu.Unlock()
	return nil
}

// Get returns the agency with id.
func (s *Store) Get(ctx context.Context, id string) (Agency, error) {
	var a Agency
	var bin string
	err := s.pool.QueryRow(ctx, `SELECT id, bin, name, roles FROM agency WHERE id = $1`, id).Scan(&a.ID, &bin, &a.Name, &a.Roles)
	if errors.Is(err, pgx.ErrNoRows) {
		return Agency{}, ErrNotFound
	}
	if err != nil {
		return Agency{}, fmt.Errorf("get agency %s: %w", id, err)
	}
	a.BIN = iin.BIN(bin)
	return a, nil
}

// Name returns the agency's name in every language.
func (s *Store) Name(ctx context.Context, id string) (i18n.Text, error) {
	now := time.Now()
	s.mu.Lock()
	c, ok := s.names[id]
	s.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.name, nil
	}
	a, err := s.Get(ctx, id)
	if err != nil {
		return i18n.Text{}, err
	}
	s.mu.Lock()
	s.names[id] = cachedName{name: a.Name, expires: now.Add(nameTTL)}
	s.mu.Unlock()
	return a.Name, nil
}

// List returns every agency, by id.
func (s *Store) List(ctx context.Context) ([]Agency, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, bin, name, roles FROM agency ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list agencies: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Agency, error) {
		var a Agency
		var bin string
		err := row.Scan(&a.ID, &bin, &a.Name, &a.Roles)
		a.BIN = iin.BIN(bin)
		return a, err
	})
}
