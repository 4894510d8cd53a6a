package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/ortaq/ortaq/internal/exchange/catalogue"
	"github.com/ortaq/ortaq/internal/exchange/gateway"
	"github.com/ortaq/ortaq/internal/exchange/xroad"
	"github.com/ortaq/ortaq/internal/pgtest"
)

// standaloneNode runs a gateway of member on a catalogue signed by a CA made
// here, with no centre: the directory metaservices need nothing else.
func standaloneNode(t *testing.T, member string, cat *catalogue.Catalogue) string {
	t.Helper()
	caPub, caKey, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caPub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: member}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(gateway.KeyFile, "PRIVATE KEY", pk)
	write(gateway.CertFile, "CERTIFICATE", der)
	write(gateway.CAFile, "CERTIFICATE", caDER)
	cat.IssuedAt = now
	env, err := catalogue.Sign(cat, caKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(env)
	if err := os.WriteFile(filepath.Join(dir, gateway.CatalogueFile), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = ca
	n, err := gateway.Open(context.Background(), gateway.Config{DataDir: dir}, pgtest.New(t).Pool)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := net.Listen("tcp", "127.0.0.1:0")
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx, gateway.Listeners{Client: cl, Peer: pl}) }()
	t.Cleanup(func() { cancel(); <-done; n.Close() })
	return "http://" + cl.Addr().String()
}

const govStackDir = "testdata/govstack-im"

// govStackCatalogue is the scenarios' fixture (test-data.json) as a
// catalogue, with the scenarios' caller allowed every service.
func govStackCatalogue(t *testing.T) *catalogue.Catalogue {
	raw, err := os.ReadFile(filepath.Join(govStackDir, "test-data.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fixture struct {
		Data []struct {
			GovStackInstance, MemberClass, MemberCode, ApplicationCode string
			Service                                                    []struct{ ServiceCode string }
		}
	}
	if err := json.Unmarshal(raw, &fixture); err != nil {
		t.Fatal(err)
	}
	caller := xroad.ClientID{Instance: "eGovStack", Class: "GOV", Member: "90000009", Subsystem: "digitalregistries"}
	c := &catalogue.Catalogue{Instance: "eGovStack",
		Members:    []catalogue.Member{{ID: caller.MemberID(), Name: "GovStack test member"}},
		Subsystems: []catalogue.Subsystem{{ID: caller, Name: "Digital registries"}}}
	for _, d := range fixture.Data {
		sub := xroad.ClientID{Instance: d.GovStackInstance, Class: d.MemberClass, Member: d.MemberCode, Subsystem: d.ApplicationCode}
		c.Members = append(c.Members, catalogue.Member{ID: sub.MemberID(), Name: d.MemberCode})
		c.Subsystems = append(c.Subsystems, catalogue.Subsystem{ID: sub, Name: d.ApplicationCode})
		for _, s := range d.Service {
			id := xroad.ServiceID{ClientID: sub, Code: s.ServiceCode}
			if _, dup := c.Service(id); dup {
				continue
			}
			doc := fmt.Sprintf(`{"openapi":"3.0.3","info":{"title":%q,"version":"1.0"},"paths":{}}`, id.String())
			c.Services = append(c.Services, catalogue.Service{ID: id, Title: s.ServiceCode, URL: "http://127.0.0.1:1", OpenAPI: json.RawMessage(doc)})
			c.Access = append(c.Access, catalogue.Access{Client: caller, Service: id})
		}
	}
	return c
}

// imSchemas compiles the directory API's component schemas.
func imSchemas(t *testing.T) func(name string) *jsonschema.Schema {
	raw, err := os.ReadFile(filepath.Join(govStackDir, "GovStack_IM_Directory_Services_API.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(doc)
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(js)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("im.json", inst); err != nil {
		t.Fatal(err)
	}
	return func(name string) *jsonschema.Schema {
		s, err := c.Compile("im.json#/components/schemas/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// imScenario is one scenario's request and response.
type imScenario struct {
	base     string
	endpoint string // listClients, listMethods, allowedMethods, getOpenAPI
	path     [4]string
	query    url.Values
	header   http.Header
	status   int
	ctype    string
	body     []byte
	elapsed  time.Duration
	done     bool
}

func unquote(s string) string { return strings.Trim(strings.TrimSpace(s), `"`) }

func (s *imScenario) send() error {
	if s.done {
		return nil
	}
	s.done = true
	u := s.base + "/listClients"
	if s.endpoint != "listClients" {
		parts := make([]string, 4)
		for i, p := range s.path {
			parts[i] = url.PathEscape(p)
		}
		u = s.base + "/r1/" + strings.Join(parts, "/") + "/" + s.endpoint
	}
	if len(s.query) > 0 {
		u += "?" + s.query.Encode()
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header = s.header.Clone()
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	s.body, err = io.ReadAll(resp.Body)
	s.elapsed, s.status, s.ctype = time.Since(start), resp.StatusCode, resp.Header.Get("Content-Type")
	return err
}

func (s *imScenario) table(tbl *godog.Table, into func(k, v string)) {
	for i, row := range tbl.Rows {
		if i == 0 || len(row.Cells) < 2 {
			continue
		}
		into(strings.TrimSpace(row.Cells[0].Value), unquote(row.Cells[1].Value))
	}
}

// TestGovStackInformationMediator runs GovStack's Information Mediator
// directory scenarios (list_clients, list_methods, allowed_methods,
// get_open_api) against a gateway node, with our own step implementations.
func TestGovStackInformationMediator(t *testing.T) {
	base := standaloneNode(t, "eGovStack/GOV/90000009", govStackCatalogue(t)) + "/gs/im"
	schema := imSchemas(t)
	const client = "eGovStack/GOV/90000009/digitalregistries"

	init := func(sc *godog.ScenarioContext) {
		s := &imScenario{base: base, query: url.Values{}, header: http.Header{}}
		want := func(endpoint string) func() error {
			return func() error { s.endpoint = endpoint; return nil }
		}
		sc.Step(`^User wants to retrieve the the list of Clients of GovStack$`, want("listClients"))
		sc.Step(`^Wants to retrieve the list of REST services and endpoints for a service provider$`, want("listMethods"))
		sc.Step(`^Wants to retrieve the list of allowed REST services and endpoints for a service provider$`, want("allowedMethods"))
		sc.Step(`^User wants to retrieve the openAPI description of the specified REST service$`, want("getOpenAPI"))

		sc.Step(`^User sends GET request with given "([^"]*)" as serviceId, "([^"]*)" as instanceId$`, func(serviceID, instance string) error {
			s.query.Set("serviceId", serviceID)
			s.query.Set("instanceId", instance)
			return nil
		})
		sc.Step(`^User sends GET request with given "([^"]*)" as serviceId, "([^"]*)" as GovStackInstance, "([^"]*)" as memberClass, "([^"]*)" as memberCode, "([^"]*)" as applicationCode and "([^"]*)" header$`,
			func(serviceID, inst, class, member, app, header string) error {
				s.query.Set("serviceId", serviceID)
				s.path = [4]string{inst, class, member, app}
				s.header.Set(header, client)
				return nil
			})
		sc.Step(`^User sends GET request with given "([^"]*)" as GovStackInstance "([^"]*)" as memberClass "([^"]*)" as memberCode "([^"]*)" as applicationCode$`,
			func(inst, class, member, app string) error {
				s.path = [4]string{inst, class, member, app}
				return nil
			})
		headers := func(tbl *godog.Table) error {
			s.table(tbl, func(k, v string) { s.header.Set(k, v) })
			return nil
		}
		sc.Step(`^I send a GET request with:$`, headers)
		sc.Step(`^The request contains headers:$`, headers)
		sc.Step(`^The payload contains:$`, func(tbl *godog.Table) error {
			s.table(tbl, func(k, v string) {
				switch k {
				case "GovStackInstance":
					s.path[0] = v
				case "memberClass":
					s.path[1] = v
				case "memberCode":
					s.path[2] = v
				case "applicationCode":
					s.path[3] = v
				default:
					s.query.Set(k, v)
				}
			})
			return nil
		})
		sc.Step(`^User provides query parameter "([^"]*)" as serviceCode$`, func(code string) error {
			s.query.Set("serviceCode", code)
			return nil
		})
		sc.Step(`^User receives a response(?: from the (\w+) endpoint)?$`, func(endpoint string) error {
			if endpoint != "" && endpoint != s.endpoint {
				return fmt.Errorf("scenario asked for %s, response from %s", s.endpoint, endpoint)
			}
			return s.send()
		})
		sc.Step(`^The (?:\w+ endpoint )?response should be returned in a timely manner$`, func() error {
			if s.elapsed > 15*time.Second {
				return fmt.Errorf("took %s", s.elapsed)
			}
			return nil
		})
		sc.Step(`^The (?:\w+ endpoint )?response should have status (\d+)$`, func(status int) error {
			if s.status != status {
				return fmt.Errorf("status %d, want %d: %s", s.status, status, s.body)
			}
			return nil
		})
		sc.Step(`^The \w+ response should have "([^"]*)": "([^"]*)" header$`, func(name, value string) error {
			if !strings.EqualFold(name, "content-type") || !strings.HasPrefix(s.ctype, value) {
				return fmt.Errorf("header %s is %q, want %q", name, s.ctype, value)
			}
			return nil
		})
		sc.Step(`^The response header content-type should be "([^"]*)"$`, func(value string) error {
			if s.ctype != value {
				return fmt.Errorf("content-type %q, want %q", s.ctype, value)
			}
			return nil
		})
		sc.Step(`^The (?:\w+ endpoint )?response should match json schema$`, func() error {
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(s.body)))
			if err != nil {
				return fmt.Errorf("not JSON: %v: %s", err, s.body)
			}
			if s.status != http.StatusOK {
				var e xroad.ErrorBody
				if json.Unmarshal(s.body, &e) != nil || e.Type == "" || e.Message == "" {
					return fmt.Errorf("error body %s lacks type and message", s.body)
				}
				return nil
			}
			switch s.endpoint {
			case "getOpenAPI":
				var doc struct{ OpenAPI string }
				if json.Unmarshal(s.body, &doc) != nil || doc.OpenAPI == "" {
					return fmt.Errorf("not an OpenAPI document: %s", s.body)
				}
				return nil
			case "listClients":
				if err := schema("restClientDetailsListType").Validate(inst); err != nil {
					return err
				}
				var out struct {
					Member []struct {
						ID struct{ ObjectType, InstanceID, MemberClass, MemberCode string } `json:"id"`
					}
				}
				json.Unmarshal(s.body, &out)
				for _, m := range out.Member {
					if m.ID.ObjectType == "" || m.ID.InstanceID == "" || m.ID.MemberClass == "" || m.ID.MemberCode == "" {
						return fmt.Errorf("incomplete client %+v", m)
					}
				}
				return nil
			default:
				if err := schema("restServiceDetailsListType").Validate(inst); err != nil {
					return err
				}
				var out struct {
					Member []struct{ ObjectType, ServiceCode string }
				}
				json.Unmarshal(s.body, &out)
				if len(out.Member) == 0 {
					return fmt.Errorf("no services listed: %s", s.body)
				}
				for _, m := range out.Member {
					if m.ObjectType != "SERVICE" || m.ServiceCode == "" {
						return fmt.Errorf("incomplete service %+v", m)
					}
				}
				return nil
			}
		})
	}
	suite := godog.TestSuite{
		Name:                "govstack-information-mediator",
		ScenarioInitializer: init,
		Options: &godog.Options{Format: "progress", Paths: []string{govStackDir}, Strict: true, TestingT: t,
			Concurrency: 1, Output: io.Discard},
	}
	if suite.Run() != 0 {
		t.Fatal("GovStack Information Mediator scenarios failed")
	}
}
