package catalogue

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/ortaq/ortaq/internal/exchange/xroad"
)

// Catalogue is one snapshot of the exchange's global configuration.
type Catalogue struct {
	Instance   string      `json:"instance"`
	IssuedAt   time.Time   `json:"issued_at"`
	Members    []Member    `json:"members"`
	Subsystems []Subsystem `json:"subsystems"`
	Services   []Service   `json:"services"`
	Access     []Access    `json:"access"`
	Gateways   []Gateway   `json:"gateways"`
	// Revoked are the serial numbers (hex) of revoked gateway certificates.
	Revoked []string `json:"revoked"`
}

// Member is an organisation of the exchange.
type Member struct {
	ID   xroad.ClientID `json:"id"`
	Name string         `json:"name"`
}

// Subsystem is a member's information system.
type Subsystem struct {
	ID   xroad.ClientID `json:"id"`
	Name string         `json:"name"`
}

// Service is a REST service a subsystem provides.
type Service struct {
	ID    xroad.ServiceID `json:"id"`
	Title string          `json:"title"`
	// URL is where the provider's gateway forwards calls (the provider's own
	// system); other members' gateways never use it.
	URL          string          `json:"url"`
	OpenAPI      json.RawMessage `json:"openapi,omitempty"`
	PersonalData bool            `json:"personal_data"`
}

// Access lets a client subsystem call a service, optionally only one HTTP
// method ("" or "*" for any) and paths matching a pattern ("" or "*" for any;
// else path.Match syntax, with a trailing "/**" matching any suffix).
type Access struct {
	Client  xroad.ClientID  `json:"client"`
	Service xroad.ServiceID `json:"service"`
	Method  string          `json:"method,omitempty"`
	Path    string          `json:"path,omitempty"`
}

// Gateway is a member's enrolled gateway node.
type Gateway struct {
	Member  xroad.ClientID `json:"member"`
	Address string         `json:"address"` // host:port of its peer listener
	Serial  string         `json:"serial"`  // certificate serial, hex
	Cert    []byte         `json:"cert"`    // DER
}

// Envelope is a signed catalogue as it travels and is cached.
type Envelope struct {
	Payload   []byte `json:"payload"`
	Signature []byte `json:"signature"`
}

// Sign makes the envelope of c with the CA's key.
func Sign(c *Catalogue, key ed25519.PrivateKey) (Envelope, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{Payload: b, Signature: ed25519.Sign(key, b)}, nil
}

// ErrSignature is returned for an envelope whose signature does not verify.
var ErrSignature = errors.New("catalogue signature does not verify")

// Verify checks env against the CA certificate and decodes it.
func Verify(env Envelope, ca *x509.Certificate) (*Catalogue, error) {
	pub, ok := ca.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("CA key is %T, want Ed25519", ca.PublicKey)
	}
	if !ed25519.Verify(pub, env.Payload, env.Signature) {
		return nil, ErrSignature
	}
	var c Catalogue
	if err := json.Unmarshal(env.Payload, &c); err != nil {
		return nil, fmt.Errorf("decode catalogue: %w", err)
	}
	return &c, nil
}

// Service finds a service.
func (c *Catalogue) Service(id xroad.ServiceID) (Service, bool) {
	for _, s := range c.Services {
		if s.ID == id {
			return s, true
		}
	}
	return Service{}, false
}

// HasSubsystem reports whether id is a registered subsystem.
func (c *Catalogue) HasSubsystem(id xroad.ClientID) bool {
	for _, s := range c.Subsystems {
		if s.ID == id {
			return true
		}
	}
	return false
}

// Allowed reports whether client may call method on svc at rest (the path
// after the service code).
func (c *Catalogue) Allowed(client xroad.ClientID, svc xroad.ServiceID, method, rest string) bool {
	for _, a := range c.Access {
		if a.Client == client && a.Service == svc && a.Matches(method, rest) {
			return true
		}
	}
	return false
}

// Matches reports whether the right covers method and rest.
func (a Access) Matches(method, rest string) bool {
	if a.Method != "" && a.Method != "*" && !strings.EqualFold(a.Method, method) {
		return false
	}
	if a.Path == "" || a.Path == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(a.Path, "/**"); ok {
		return rest == prefix || strings.HasPrefix(rest, prefix+"/")
	}
	ok, err := path.Match(a.Path, rest)
	return err == nil && ok
}

// AllowedServices lists the services client may call at all, provided by
// provider (a subsystem) or by anyone when provider is zero.
func (c *Catalogue) AllowedServices(client, provider xroad.ClientID) []Service {
	var out []Service
	for _, s := range c.Services {
		if provider != (xroad.ClientID{}) && s.ID.ClientID != provider {
			continue
		}
		for _, a := range c.Access {
			if a.Client == client && a.Service == s.ID {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// ServicesOf lists the services of a subsystem.
func (c *Catalogue) ServicesOf(provider xroad.ClientID) []Service {
	var out []Service
	for _, s := range c.Services {
		if s.ID.ClientID == provider {
			out = append(out, s)
		}
	}
	return out
}

// GatewayFor is the newest active gateway of member (the last enrolled, so a
// rotated certificate takes over at once while the old one still verifies).
func (c *Catalogue) GatewayFor(member xroad.ClientID) (Gateway, bool) {
	member = member.MemberID()
	for i := len(c.Gateways) - 1; i >= 0; i-- {
		g := c.Gateways[i]
		if g.Member == member && !c.IsRevoked(g.Serial) {
			return g, true
		}
	}
	return Gateway{}, false
}

// ActiveSerial reports whether serial belongs to a listed, unrevoked gateway
// certificate of member.
func (c *Catalogue) ActiveSerial(member xroad.ClientID, serial string) bool {
	for _, g := range c.Gateways {
		if g.Serial == serial && g.Member == member.MemberID() {
			return !c.IsRevoked(serial)
		}
	}
	return false
}

// IsRevoked reports whether serial was revoked.
func (c *Catalogue) IsRevoked(serial string) bool {
	for _, s := range c.Revoked {
		if s == serial {
			return true
		}
	}
	return false
}

// TimestampMessage is what the centre signs to timestamp a digest (a
// message log seal): a domain tag, the time in microseconds and the digest.
func TimestampMessage(digest []byte, atMicros int64) []byte {
	m := fmt.Appendf(nil, "ortaq-timestamp-v1\n%d\n", atMicros)
	return append(m, digest...)
}

// VerifyTimestamp checks a centre timestamp against the CA certificate.
func VerifyTimestamp(ca *x509.Certificate, digest []byte, atMicros int64, sig []byte) bool {
	pub, ok := ca.PublicKey.(ed25519.PublicKey)
	return ok && ed25519.Verify(pub, TimestampMessage(digest, atMicros), sig)
}
