package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// EnrolRequest is what a node sends to the centre to enrol.
type EnrolRequest struct {
	Token   string `json:"token"`
	CSR     []byte `json:"csr"`
	Address string `json:"address"`
}

// Enrolled is the centre's answer.
type Enrolled struct {
	Member      string `json:"member"`
	Serial      string `json:"serial"`
	Certificate []byte `json:"certificate"`
	CA          []byte `json:"ca"`
}

// Enrol creates the node's key (or a new one, rotating it), spends the
// one-time token at the centre and stores key, certificate and CA in dir.
// address is the peer listener's host:port as other gateways reach it.
func Enrol(ctx context.Context, centreURL, dir, token, address string) (Enrolled, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Enrolled{}, err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Enrolled{}, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ortaq gateway"}}, key)
	if err != nil {
		return Enrolled{}, err
	}
	body, _ := json.Marshal(EnrolRequest{Token: token, CSR: csr, Address: address})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, centreURL+"/api/v1/exchange/enrol", bytes.NewReader(body))
	if err != nil {
		return Enrolled{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Enrolled{}, fmt.Errorf("enrol: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return Enrolled{}, fmt.Errorf("enrol: centre answered %s: %s", resp.Status, bytes.TrimSpace(raw))
	}
	var e Enrolled
	if err := json.Unmarshal(raw, &e); err != nil {
		return Enrolled{}, fmt.Errorf("enrol: %w", err)
	}
	cert, err := x509.ParseCertificate(e.Certificate)
	if err != nil {
		return Enrolled{}, fmt.Errorf("enrol: certificate: %w", err)
	}
	if pub, ok := cert.PublicKey.(ed25519.PublicKey); !ok || !pub.Equal(key.Public()) {
		return Enrolled{}, errors.New("enrol: certificate is not for this node's key")
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Enrolled{}, err
	}
	for _, f := range []struct {
		name, typ string
		der       []byte
		mode      os.FileMode
	}{{KeyFile, "PRIVATE KEY", pk, 0o600}, {CertFile, "CERTIFICATE", e.Certificate, 0o644}, {CAFile, "CERTIFICATE", e.CA, 0o644}} {
		tmp := filepath.Join(dir, f.name+".tmp")
		if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			return Enrolled{}, err
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			return Enrolled{}, err
		}
	}
	return e, nil
}
