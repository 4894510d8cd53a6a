package esign_test

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/esign"
)

// Signing in-process, as the engine's tests and internal/servicetest do: a
// demo CA trusted by the platform, a citizen's certificate, a CMS signature
// over the statement, verified.
func Example() {
	var pool *pgxpool.Pool // the platform's database, e.g. pgtest.New(t).Pool
	ctx := context.Background()
	v := esign.NewVerifier(pool, clock.Real{})

	ca, _ := esign.NewDemoCA()
	_, _ = v.AddRoot(ctx, ca.Cert.Raw, "test")
	key, _ := ca.Issue("900101300017", esign.IssueOptions{Name: "ТЕСТОВ ТЕСТ"})
	sig, _ := key.Sign([]byte("statement"), esign.FormatCMS)

	signer, err := v.Verify(ctx, []byte("statement"), sig, time.Time{})
	fmt.Println(signer.IIN, signer.Roles, err)
}
