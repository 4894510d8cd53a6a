package pg_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/pgtest"
)

// The platform's ids go through the native codec both ways, NULL included,
// and keep working where pgx cannot know the parameter's type.
func TestUUIDRoundTrip(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t).Pool
	id := uuid.Must(uuid.NewV7())
	var back uuid.UUID
	var text string
	if err := pool.QueryRow(ctx, `SELECT $1::uuid, $1::uuid::text`, id).Scan(&back, &text); err != nil {
		t.Fatal(err)
	}
	if back != id || text != id.String() {
		t.Fatalf("round trip: %s %s, want %s", back, text, id)
	}
	var missing *uuid.UUID
	var nullable *uuid.UUID = &id
	if err := pool.QueryRow(ctx, `SELECT $1::uuid, NULL::uuid`, missing).Scan(&back, &nullable); err == nil {
		t.Fatal("scanning NULL into uuid.UUID succeeded")
	}
	if err := pool.QueryRow(ctx, `SELECT $1::uuid, NULL::uuid`, &id).Scan(&back, &nullable); err != nil || back != id || nullable != nil {
		t.Fatalf("pointer: %v %s %v", err, back, nullable)
	}
	if err := pool.QueryRow(ctx, `SELECT $1::text`, id).Scan(&text); err != nil || text != id.String() {
		t.Fatalf("as text: %v %q", err, text)
	}
	var ids []uuid.UUID
	if err := pool.QueryRow(ctx, `SELECT ARRAY[$1::uuid, $1::uuid]`, id).Scan(&ids); err != nil || len(ids) != 2 || ids[1] != id {
		t.Fatalf("array: %v %v", err, ids)
	}
}
