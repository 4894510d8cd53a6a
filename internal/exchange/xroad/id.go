package xroad

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// MemberClasses are the member classes the platform knows.
var MemberClasses = []string{"GOV", "COM", "NGO", "ORG", "PRIV"}

// MaxPartLen bounds each identifier part, as X-Road's central server does.
const MaxPartLen = 255

// ClientID names a member (Subsystem empty) or one of its subsystems.
type ClientID struct {
	Instance  string `json:"xroad_instance"`
	Class     string `json:"member_class"`
	Member    string `json:"member_code"`
	Subsystem string `json:"subsystem_code,omitempty"`
}

// ServiceID names a service of a subsystem.
type ServiceID struct {
	ClientID
	Code string `json:"service_code"`
}

// ErrID is wrapped by every identifier parse error.
var ErrID = errors.New("invalid X-Road identifier")

// CheckPart reports whether s is usable as one identifier part: non-empty,
// at most MaxPartLen bytes, printable, and free of '/', '\\', ';', ':', '%'
// and whitespace (X-Road's central server refuses those too).
func CheckPart(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty part", ErrID)
	}
	if len(s) > MaxPartLen {
		return fmt.Errorf("%w: part longer than %d bytes", ErrID, MaxPartLen)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`/\;:%`, r) || r == '\uFFFD' {
			return fmt.Errorf("%w: character %q not allowed", ErrID, r)
		}
	}
	return nil
}

// ParseClient parses INSTANCE/CLASS/MEMBER or INSTANCE/CLASS/MEMBER/SUBSYSTEM
// (the X-Road-Client header's form).
func ParseClient(s string) (ClientID, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 && len(parts) != 4 {
		return ClientID{}, fmt.Errorf("%w: want INSTANCE/CLASS/MEMBER[/SUBSYSTEM], got %d parts", ErrID, len(parts))
	}
	for _, p := range parts {
		if err := CheckPart(p); err != nil {
			return ClientID{}, err
		}
	}
	id := ClientID{Instance: parts[0], Class: parts[1], Member: parts[2]}
	if len(parts) == 4 {
		id.Subsystem = parts[3]
	}
	return id, nil
}

// ParseSubsystem is ParseClient that requires the subsystem part.
func ParseSubsystem(s string) (ClientID, error) {
	id, err := ParseClient(s)
	if err == nil && id.Subsystem == "" {
		err = fmt.Errorf("%w: subsystem code missing", ErrID)
	}
	return id, err
}

// ParseService parses INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE.
func ParseService(s string) (ServiceID, error) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return ServiceID{}, fmt.Errorf("%w: want INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE", ErrID)
	}
	c, err := ParseSubsystem(s[:i])
	if err != nil {
		return ServiceID{}, err
	}
	if err := CheckPart(s[i+1:]); err != nil {
		return ServiceID{}, err
	}
	return ServiceID{ClientID: c, Code: s[i+1:]}, nil
}

func (c ClientID) String() string {
	s := c.Instance + "/" + c.Class + "/" + c.Member
	if c.Subsystem != "" {
		s += "/" + c.Subsystem
	}
	return s
}

// MemberID is the member part: INSTANCE/CLASS/MEMBER.
func (c ClientID) MemberID() ClientID { c.Subsystem = ""; return c }

// IsSubsystem reports whether c names a subsystem.
func (c ClientID) IsSubsystem() bool { return c.Subsystem != "" }

// ObjectType is X-Road's object type of c: MEMBER or SUBSYSTEM.
func (c ClientID) ObjectType() string {
	if c.Subsystem != "" {
		return "SUBSYSTEM"
	}
	return "MEMBER"
}

// Subsystem is the providing subsystem of s.
func (s ServiceID) Subsystem() ClientID { return s.ClientID }

func (s ServiceID) String() string { return s.ClientID.String() + "/" + s.Code }

// Path is the r1 request path of s with an optional rest ("/x/y"), each
// identifier part percent-encoded.
func (s ServiceID) Path(rest string) string {
	var b strings.Builder
	b.WriteString("/r1")
	for _, p := range []string{s.Instance, s.Class, s.Member, s.ClientID.Subsystem, s.Code} {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	b.WriteString(rest)
	return b.String()
}
