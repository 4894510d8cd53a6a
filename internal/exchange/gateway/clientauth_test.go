package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/exchange/gateway"
	"github.com/ortaq/ortaq/internal/exchange/xroad"
)

// selfSigned is an information system's own certificate, as an agency's
// system would hold one for its gateway's client port.
func selfSigned(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestClientAuthentication: a subsystem with registered certificates is
// served only over TLS to a system presenting one of them; a subsystem
// without keeps X-Road's NOSSL behaviour unless every subsystem must have
// one.
func TestClientAuthentication(t *testing.T) {
	e := newEnv(t)
	prov := provider(t)
	e.member("100", "portal")
	e.member("200", "registry")
	e.admin("POST", "/api/v1/exchange/subsystems", map[string]any{"id": "KZ/GOV/100/open", "name": "open"})
	e.admin("POST", "/api/v1/exchange/services", map[string]any{"id": "KZ/GOV/200/registry/persons", "title": "Persons", "url": prov.URL + "/api"})
	for _, c := range []string{"KZ/GOV/100/portal", "KZ/GOV/100/open"} {
		e.admin("POST", "/api/v1/exchange/access", map[string]any{"client": c, "service": "KZ/GOV/200/registry/persons"})
	}
	good, other := selfSigned(t, "portal"), selfSigned(t, "intruder")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "portal.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good.Certificate[0]}), 0o600)
	list := "# the portal's system\nKZ/GOV/100/portal portal.pem\n"
	os.WriteFile(filepath.Join(dir, "clients"), []byte(list), 0o600)
	certs, err := gateway.ReadClientCerts(filepath.Join(dir, "clients"))
	if err != nil || len(certs["KZ/GOV/100/portal"]) != 1 || certs["KZ/GOV/100/portal"][0] != gateway.FingerprintOf(good.Leaf) {
		t.Fatalf("read: %v %v", certs, err)
	}
	require := false
	e.configure = func(c *gateway.Config) { c.ClientTLS, c.ClientCerts, c.RequireClientCerts = true, certs, require }
	a := e.node("100", time.Hour)
	require = true
	strict := e.node("100", time.Hour)
	e.configure = nil
	b := e.node("200", time.Hour)
	e.refresh(a, strict, b)

	get := func(base string, cert *tls.Certificate, client string) reply {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // the node's certificate is checked elsewhere
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", base+"/r1/KZ/GOV/200/registry/persons", nil)
		req.Header.Set(xroad.HeaderClient, client)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return reply{status: resp.StatusCode, header: resp.Header}
	}
	for _, tc := range []struct {
		name   string
		node   *testNode
		cert   *tls.Certificate
		client string
		want   int
	}{
		{"registered certificate", a, &good, "KZ/GOV/100/portal", 200},
		{"no certificate", a, nil, "KZ/GOV/100/portal", 401},
		{"another certificate", a, &other, "KZ/GOV/100/portal", 401},
		{"the registered certificate acting for another subsystem without any", a, &good, "KZ/GOV/100/open", 200},
		{"a subsystem without certificates, none required", a, nil, "KZ/GOV/100/open", 200},
		{"a subsystem without certificates, all required", strict, &good, "KZ/GOV/100/open", 401},
		{"registered certificate, all required", strict, &good, "KZ/GOV/100/portal", 200},
	} {
		r := get(tc.node.client, tc.cert, tc.client)
		if r.status != tc.want || (tc.want == 401 && r.header.Get(xroad.HeaderError) != xroad.ErrSslAuth) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.header.Get(xroad.HeaderError))
		}
	}
	// Plain HTTP does not reach a TLS client port at all.
	if r := call(t, "GET", strings.Replace(a.client, "https://", "http://", 1)+"/r1/KZ/GOV/200/registry/persons", nil,
		xroad.HeaderClient, "KZ/GOV/100/open"); r.status == 200 {
		t.Error("plain HTTP served on the TLS client port")
	}
}

func TestReadClientCertsNamesTheBadLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ content, want string }{
		{"KZ/GOV/100/portal", "line 1"},
		{"\n# c\nKZ/GOV/100 sha256:00", "line 3: \"KZ/GOV/100\" is not a subsystem"},
		{"KZ/GOV/100/portal sha256:abcd", "line 1: \"sha256:abcd\" is not a SHA-256"},
		{"KZ/GOV/100/portal missing.pem", "line 1: open"},
		{"KZ/GOV/100/portal clients", "no PEM certificate"},
	} {
		p := filepath.Join(dir, "clients")
		os.WriteFile(p, []byte(tc.content), 0o600)
		if _, err := gateway.ReadClientCerts(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.content, err, tc.want)
		}
	}
	if _, err := gateway.ReadClientCerts(filepath.Join(dir, "nope")); err == nil {
		t.Error("a missing file is accepted")
	}
}
