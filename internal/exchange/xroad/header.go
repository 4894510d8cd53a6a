package xroad

import (
	"fmt"
	"net/http"
	"strings"
)

// The X-Road REST headers.
const (
	HeaderClient      = "X-Road-Client"
	HeaderID          = "X-Road-Id"
	HeaderUserID      = "X-Road-UserId"
	HeaderIssue       = "X-Road-Issue"
	HeaderService     = "X-Road-Service"
	HeaderRequestID   = "X-Road-Request-Id"
	HeaderRequestHash = "X-Road-Request-Hash"
	HeaderError       = "X-Road-Error"
	HeaderRepresented = "X-Road-Represented-Party"
)

// MaxHeaderLen bounds the free-text headers (id, user id, issue).
const MaxHeaderLen = 1024

// Headers are a client's X-Road request headers.
type Headers struct {
	Client ClientID
	ID     string // message id; empty when the client sent none
	UserID string
	Issue  string
}

// ParseHeaders reads the X-Road request headers of h. X-Road-Client is
// required; the others are optional but, when present, must be printable
// and at most MaxHeaderLen bytes.
func ParseHeaders(h http.Header) (Headers, error) {
	vals := h.Values(HeaderClient)
	if len(vals) == 0 {
		return Headers{}, fmt.Errorf("%w: header %s missing", ErrID, HeaderClient)
	}
	if len(vals) > 1 {
		return Headers{}, fmt.Errorf("%w: header %s repeated", ErrID, HeaderClient)
	}
	c, err := ParseClient(strings.TrimSpace(vals[0]))
	if err != nil {
		return Headers{}, err
	}
	out := Headers{Client: c}
	for _, f := range []struct {
		name string
		dst  *string
	}{{HeaderID, &out.ID}, {HeaderUserID, &out.UserID}, {HeaderIssue, &out.Issue}} {
		vs := h.Values(f.name)
		if len(vs) > 1 {
			return Headers{}, fmt.Errorf("%w: header %s repeated", ErrID, f.name)
		}
		if len(vs) == 0 {
			continue
		}
		v := strings.TrimSpace(vs[0])
		if len(v) > MaxHeaderLen {
			return Headers{}, fmt.Errorf("%w: header %s longer than %d bytes", ErrID, f.name, MaxHeaderLen)
		}
		for _, r := range v {
			if r < ' ' || r == 0x7f {
				return Headers{}, fmt.Errorf("%w: header %s has a control character", ErrID, f.name)
			}
		}
		*f.dst = v
	}
	return out, nil
}
