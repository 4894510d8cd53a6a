package msglog_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/exchange/catalogue"
	"github.com/ortaq/ortaq/internal/exchange/msglog"
	"github.com/ortaq/ortaq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, msglog.Schema()) }

func selfSigned(t *testing.T) (ed25519.PrivateKey, *x509.Certificate) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return key, c
}

func TestChainSealVerifyTamper(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	key, cert := selfSigned(t)
	l, err := msglog.Open(ctx, db.Pool, key, cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Append(ctx, msglog.Entry{Direction: "out", MessageID: fmt.Sprint("m", i), Client: "KZ/GOV/1/a", Service: "KZ/GOV/2/b/s", Status: 200}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// The test's certificate is its own CA: a timestamp "of the centre" is
	// signed with the same key; one by another key must not verify.
	l.SetTimestamper(func(_ context.Context, digest []byte) (int64, []byte, error) {
		return 42, ed25519.Sign(key, catalogue.TimestampMessage(digest, 42)), nil
	})
	if ok, err := l.Seal(ctx); err != nil || !ok {
		t.Fatalf("seal: %v %v", ok, err)
	}
	_ = l.Append(ctx, msglog.Entry{Direction: "in", MessageID: "late"})
	l.Close()

	rep, err := msglog.VerifyDB(ctx, db.Pool, cert)
	if err != nil || !rep.OK() || rep.Entries != 51 || rep.Seals != 1 || rep.Timestamped != 1 || rep.Unsealed != 1 {
		t.Fatalf("clean log: %+v %v", rep, err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE gateway_msglog_seal SET ts_at_us = 43`); err != nil {
		t.Fatal(err)
	}
	if rep, _ := msglog.VerifyDB(ctx, db.Pool, cert); rep.OK() {
		t.Fatal("a moved timestamp verified")
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE gateway_msglog_seal SET ts_at_us = 42`); err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if err := msglog.Export(ctx, db.Pool, &archive); err != nil {
		t.Fatal(err)
	}
	if rep, err := msglog.VerifyArchive(bytes.NewReader(archive.Bytes()), cert); err != nil || !rep.OK() || rep.Entries != 51 {
		t.Fatalf("archive: %+v %v", rep, err)
	}
	tampered := strings.Replace(archive.String(), `"message_id":"late"`, `"message_id":"lat3"`, 1)
	if rep, _ := msglog.VerifyArchive(strings.NewReader(tampered), cert); rep.OK() {
		t.Fatal("tampered archive verified")
	}

	for _, tc := range []struct{ name, sql, want string }{
		{"altered", `UPDATE gateway_msglog SET status = 500 WHERE seq = 10`, "entry 10: content altered"},
		{"removed", `DELETE FROM gateway_msglog WHERE seq = 20`, "entry 21: expected entry 20"},
		{"reordered", `UPDATE gateway_msglog SET seq = -1 WHERE seq = 30; UPDATE gateway_msglog SET seq = 30 WHERE seq = 31; UPDATE gateway_msglog SET seq = 31 WHERE seq = -1`, "does not chain"},
		{"truncated", `DELETE FROM gateway_msglog WHERE seq >= 45`, "covers entries that are gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.New(t)
			l, err := msglog.Open(ctx, db.Pool, key, cert.Raw)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 50 {
				if err := l.Append(ctx, msglog.Entry{Direction: "out", MessageID: fmt.Sprint("m", i), Status: 200}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := l.Seal(ctx); err != nil {
				t.Fatal(err)
			}
			l.Close()
			if _, err := db.Pool.Exec(ctx, tc.sql); err != nil {
				t.Fatal(err)
			}
			rep, err := msglog.VerifyDB(ctx, db.Pool, cert)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || !strings.Contains(strings.Join(rep.Problems, "\n"), tc.want) {
				t.Fatalf("problems %q, want %q", rep.Problems, tc.want)
			}
		})
	}
}
