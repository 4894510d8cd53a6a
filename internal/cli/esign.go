package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/esign"
)

func esignCmd(args []string, stdout, stderr io.Writer) error {
	return dispatch("esign", "usage: ortaq esign demo-ca|issue|sign|trust [flags]  (see ortaq esign issue --help)", args, stdout, stderr,
		subcommand{"demo-ca", esignDemoCA}, subcommand{"issue", esignIssue}, subcommand{"sign", esignSign}, subcommand{"trust", esignTrust})
}

func required(stderr io.Writer, pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			fmt.Fprintf(stderr, "--%s is required\n", pairs[i])
			return errUsage
		}
	}
	return nil
}

func esignDemoCA(args []string, stdout, stderr io.Writer) error {
	var out string
	f := newFlags("esign demo-ca", "Makes a demo root certification authority for development and tests: an ECDSA P-256 key and "+
		"a self-signed certificate named \""+esign.DemoCAName+"\", valid ten years, written to DIR/"+esign.CertFile+" and DIR/"+
		esign.KeyFile+" (readable by you only). Never trust it on a production platform.", stderr)
	f.String(&out, "out", "", "directory to write the CA to (created if missing)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := required(stderr, "out", out); err != nil {
		return err
	}
	ca, err := esign.NewDemoCA()
	if err != nil {
		return err
	}
	if err := ca.Save(out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ortaq esign: demo CA %q (serial %s, valid until %s) written to %s\n"+
		"Trust it on a test platform with: ortaq esign trust --ca %s\n",
		ca.Cert.Subject.CommonName, ca.Cert.SerialNumber.Text(16), ca.Cert.NotAfter.UTC().Format(time.DateOnly), out, out)
	return nil
}

func esignIssue(args []string, stdout, stderr io.Writer) error {
	var caDir, out, personIIN string
	var o esign.IssueOptions
	var roles []string
	f := newFlags("esign issue", "Issues a person's signing certificate from a demo CA, shaped like NCA RK's: SERIALNUMBER=IIN..., "+
		"OU=BIN... with --bin, key usage digitalSignature and contentCommitment, KZ role OIDs in the extended key usage. "+
		"Writes the key and the certificate chain to DIR/"+esign.KeyFile+" and DIR/"+esign.CertFile+".", stderr)
	f.String(&caDir, "ca", "", "directory of the demo CA (ortaq esign demo-ca)")
	f.String(&personIIN, "iin", "", "the signer's IIN (12 digits, valid check digit)")
	f.String(&o.BIN, "bin", "", "the organisation's BIN, for an employee's certificate (optional)")
	f.String(&o.Name, "name", "", "the signer's full name, the certificate's CN (default DEMO <IIN>)")
	f.String(&o.KeyType, "key-type", esign.KeyECDSA, "ecdsa (P-256), rsa (2048) or ed25519 (raw signatures only)")
	f.Strings(&roles, "role", "a KZ role: individual, legal_entity, ceo, signing_right, financial_signing_right, hr, employee; "+
		"repeat for several (default individual; legal_entity and employee with --bin)")
	f.String(&out, "out", "", "directory to write the key and certificate to (created if missing)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := required(stderr, "ca", caDir, "iin", personIIN, "out", out); err != nil {
		return err
	}
	if len(roles) > 0 {
		o.Roles = roles
	}
	ca, err := esign.LoadDemoCA(caDir)
	if err != nil {
		return err
	}
	key, err := ca.Issue(personIIN, o)
	if err != nil {
		return err
	}
	if err := key.Save(out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ortaq esign: certificate %s for %s (%s) valid until %s written to %s\n"+
		"Sign with: ortaq esign sign --key %s --data FILE [--format raw|cms]\n",
		key.Cert.SerialNumber.Text(16), key.Cert.Subject.SerialNumber, key.Cert.Subject.CommonName,
		key.Cert.NotAfter.UTC().Format(time.DateOnly), out, out)
	return nil
}

func esignSign(args []string, stdout, stderr io.Writer) error {
	var keyDir, data, format string
	f := newFlags("esign sign", "Signs the bytes of a file (- for stdin) with a key from ortaq esign issue and prints the "+
		"signature as the platform takes it: JSON with format, algorithm, value and chain (base64).", stderr)
	f.String(&keyDir, "key", "", "directory of the key (ortaq esign issue --out)")
	f.String(&data, "data", "", "the file to sign; - reads stdin")
	f.String(&format, "format", esign.FormatCMS, "raw (a bare signature, ES256/RS256/EdDSA) or cms (detached CMS, as NCALayer makes)")
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := required(stderr, "key", keyDir, "data", data); err != nil {
		return err
	}
	key, err := esign.LoadKey(keyDir)
	if err != nil {
		return err
	}
	var b []byte
	if data == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(data)
	}
	if err != nil {
		return err
	}
	sig, err := key.Sign(b, format)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(sig)
}

func esignTrust(args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var level, caDir, url, token, actor string
	f := newFlags("esign trust", "Adds a CA's certificate (DIR/"+esign.CertFile+", its first certificate) to the platform's "+
		"trust roots: through the API of a running platform with --url (and the administrative token), else directly "+
		"in the database (with the embedded database, while ortaq serve is stopped). Other nodes trust it within a minute.", stderr)
	f.String(&caDir, "ca", "", "directory of the CA (ortaq esign demo-ca --out)")
	f.String(&url, "url", "", "a running platform's address, e.g. http://127.0.0.1:8080; empty writes to the database")
	f.String(&token, "admin-token", "", "the platform's administrative bearer token (with --url)")
	f.String(&actor, "actor", defaultActor(), "who adds the root, for the audit trail (without --url)")
	databaseFlags(f, &cfg, &level)
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := required(stderr, "ca", caDir); err != nil {
		return err
	}
	chain, err := esign.LoadCertificates(caDir + "/" + esign.CertFile)
	if err != nil {
		return err
	}
	der := chain[0]
	if url != "" {
		return trustThroughAPI(url, token, der, stdout)
	}
	return withDatabase(cfg, level, stderr, func(ctx context.Context, db *app.Database, _ *slog.Logger) error {
		root, err := esign.NewVerifier(db.Pool, clock.Real{}).AddRoot(ctx, der, actor)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ortaq esign: trust root %d: %s (until %s)\n", root.ID, root.Subject, root.NotAfter.Format(time.DateOnly))
		return nil
	})
}

func trustThroughAPI(url, token string, der []byte, stdout io.Writer) error {
	body, err := json.Marshal(esign.AddRootRequest{Certificate: der})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(url, "/")+"/api/v1/esign/roots", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept-Language", "en")
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("reach %s: %w", url, err)
	}
	defer res.Body.Close()
	var answer struct {
		esign.Root
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&answer); err != nil {
		return fmt.Errorf("unreadable answer (HTTP %d): %w", res.StatusCode, err)
	}
	if res.StatusCode != http.StatusCreated {
		return errors.New(answer.Code + ": " + answer.Message)
	}
	fmt.Fprintf(stdout, "ortaq esign: trust root %d: %s (until %s)\n", answer.ID, answer.Subject, answer.NotAfter.Format(time.DateOnly))
	return nil
}
