package gateway

import (
	"bufio"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ortaq/ortaq/internal/exchange/xroad"
)

// ClientCerts are the TLS certificates of the member's own information
// systems, by the subsystem they act for: X-Road's "SSLAUTH" connection
// type. A subsystem with certificates here is served only over TLS to a
// system that presents one of them; one without is served as X-Road's
// "NOSSL" (any caller on the client port may name it) unless
// [Config].RequireClientCerts is set.
//
// The header X-Road-Client alone identifies nobody: on a client port that
// other hosts reach, every subsystem should have its certificates here.
type ClientCerts map[string][]Fingerprint

// Fingerprint is the SHA-256 of a certificate's DER encoding.
type Fingerprint [sha256.Size]byte

func (f Fingerprint) String() string { return "sha256:" + hex.EncodeToString(f[:]) }

// FingerprintOf returns the fingerprint of cert.
func FingerprintOf(cert *x509.Certificate) Fingerprint { return sha256.Sum256(cert.Raw) }

// maxClientCertsFile bounds what ReadClientCerts reads.
const maxClientCertsFile = 1 << 20

// ReadClientCerts reads a file of lines "SUBSYSTEM CERTIFICATE", where
// SUBSYSTEM is an X-Road subsystem identifier (INSTANCE/CLASS/MEMBER/
// SUBSYSTEM) and CERTIFICATE a fingerprint "sha256:<64 hex digits>" or the
// path of a PEM certificate (relative to the file's directory). Blank
// lines and lines starting with # are skipped. Errors name the line.
func ReadClientCerts(path string) (ClientCerts, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseClientCerts(io.LimitReader(f, maxClientCertsFile), filepath.Dir(path))
}

func parseClientCerts(r io.Reader, dir string) (ClientCerts, error) {
	out := ClientCerts{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"SUBSYSTEM CERTIFICATE\", got %d fields", n, len(fields))
		}
		id, err := xroad.ParseSubsystem(fields[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %q is not a subsystem identifier INSTANCE/CLASS/MEMBER/SUBSYSTEM", n, fields[0])
		}
		fp, err := certificateFingerprint(fields[1], dir)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out[id.String()] = append(out[id.String()], fp)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("client certificates: %w", err)
	}
	return out, nil
}

func certificateFingerprint(s, dir string) (Fingerprint, error) {
	var fp Fingerprint
	if h, ok := strings.CutPrefix(s, "sha256:"); ok {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return fp, fmt.Errorf("%q is not a SHA-256 fingerprint (sha256: and 64 hex digits)", s)
		}
		copy(fp[:], b)
		return fp, nil
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(dir, s)
	}
	raw, err := os.ReadFile(s)
	if err != nil {
		return fp, err
	}
	blk, _ := pem.Decode(raw)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return fp, fmt.Errorf("%s: no PEM certificate", s)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return fp, fmt.Errorf("%s: %w", s, err)
	}
	return FingerprintOf(cert), nil
}

// authenticateClient says why the request may not act for the subsystem
// client, or "" when it may.
func (n *Node) authenticateClient(r *http.Request, client xroad.ClientID) string {
	want := n.cfg.ClientCerts[client.String()]
	if len(want) == 0 {
		if n.cfg.RequireClientCerts {
			return "subsystem " + client.String() + " has no registered TLS certificate on this gateway"
		}
		return ""
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "subsystem " + client.String() + " must call over TLS with its registered certificate"
	}
	got := FingerprintOf(r.TLS.PeerCertificates[0])
	for _, fp := range want {
		if fp == got {
			return ""
		}
	}
	return "the TLS certificate presented (" + got.String() + ") is not registered for subsystem " + client.String()
}
