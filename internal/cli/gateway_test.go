package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGatewayCommands(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"gateway"}, 2, "usage: ortaq gateway"},
		{[]string{"gateway", "nope"}, 2, "unknown subcommand"},
		{[]string{"gateway", "serve", "--help"}, 0, "ORTAQ_MAX_CATALOGUE_AGE"},
		{[]string{"gateway", "enrol", "--help"}, 0, "ORTAQ_ENROL_TOKEN"},
		{[]string{"gateway", "enrol", "--address", "127.0.0.1:1"}, 1, "--token and --address are required"},
		{[]string{"gateway", "log", "verify", "--data", t.TempDir()}, 1, "CA certificate"},
		{[]string{"gateway", "log", "export"}, 1, "--out is required"},
		{[]string{"bench", "exchange", "--help"}, 0, "--latency-for"},
	} {
		var out, errOut strings.Builder
		code := Main(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, want %d with %q\nstdout: %s\nstderr: %s", tc.args, code, tc.code, tc.want, out.String(), errOut.String())
		}
	}
}

func TestGatewayLogVerifyRefusesABrokenArchive(t *testing.T) {
	dir := t.TempDir()
	// Any CA will do: the archive is refused before any seal is checked.
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "log.jsonl")
	os.WriteFile(archive, []byte(`{"kind":"entry","entry":{"seq":2,"prev":"AA==","hash":"AA=="}}`+"\n"), 0o600)
	var out, errOut strings.Builder
	code := Main([]string{"gateway", "log", "verify", "--data", dir, "--archive", archive}, &out, &errOut)
	if code == 0 || !strings.Contains(out.String(), "ok=false") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
}
