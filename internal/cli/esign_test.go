package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/esign"
)

// TestESignDemoCAIssueSignTrust runs the developer signing tool end to end:
// a demo CA, a person's certificate, raw and CMS signatures, and trusting the
// CA through the API (a stand-in server that checks the request).
func TestESignDemoCAIssueSignTrust(t *testing.T) {
	dir := t.TempDir()
	run := func(want int, args ...string) string {
		t.Helper()
		var out, errOut strings.Builder
		if code := Main(args, &out, &errOut); code != want {
			t.Fatalf("ortaq %v exited %d; want %d\n%s%s", args, code, want, out.String(), errOut.String())
		}
		return out.String()
	}
	ca, person, data := filepath.Join(dir, "ca"), filepath.Join(dir, "person"), filepath.Join(dir, "statement.json")
	run(0, "esign", "demo-ca", "--out", ca)
	run(0, "esign", "issue", "--ca", ca, "--iin", "900101300017", "--bin", "240140000011", "--role", "ceo", "--out", person)
	run(1, "esign", "issue", "--ca", ca, "--iin", "900101300018", "--out", filepath.Join(dir, "bad"))
	run(2, "esign", "issue", "--ca", ca, "--out", filepath.Join(dir, "bad"))
	if err := os.WriteFile(data, []byte(`{"statement":"test"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	caChain, err := esign.LoadCertificates(filepath.Join(ca, esign.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"raw", "cms"} {
		sig, err := esign.ParseSignature([]byte(run(0, "esign", "sign", "--key", person, "--data", data, "--format", format)))
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if sig.Format != format || len(sig.Value) == 0 || (format == "raw" && (sig.Algorithm != esign.ES256 || len(sig.Chain) != 2 || !bytes.Equal(sig.Chain[1], caChain[0]))) {
			t.Errorf("%s signature: %+v", format, sig)
		}
	}
	key, err := esign.LoadKey(person)
	if err != nil {
		t.Fatal(err)
	}
	if key.Cert.Subject.SerialNumber != "IIN900101300017" || key.Cert.Subject.OrganizationalUnit[0] != "BIN240140000011" {
		t.Errorf("subject %s", key.Cert.Subject)
	}

	var got esign.AddRootRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/esign/roots" || r.Header.Get("Authorization") != "Bearer secret" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"code":"auth.unauthorized","message":"no"}`))
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":7,"subject":"CN=x","not_after":"2036-01-01T00:00:00Z"}`))
	}))
	defer srv.Close()
	if out := run(0, "esign", "trust", "--ca", ca, "--url", srv.URL, "--admin-token", "secret"); !strings.Contains(out, "trust root 7") {
		t.Errorf("trust: %s", out)
	}
	if !bytes.Equal(got.Certificate, caChain[0]) {
		t.Errorf("trust sent %x; want the CA's certificate", got.Certificate)
	}
	run(1, "esign", "trust", "--ca", ca, "--url", srv.URL, "--admin-token", "wrong")
	run(2, "esign", "nonsense")
}
