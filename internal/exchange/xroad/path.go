package xroad

import (
	"fmt"
	"net/url"
	"strings"
)

// Version is the REST protocol version this package speaks.
const Version = "r1"

// Request is a parsed r1 request line.
type Request struct {
	Service ServiceID
	// Rest is the path after the service code, starting with "/" or empty,
	// still escaped as received (it goes to the provider unchanged).
	Rest string
}

// ParsePath parses an escaped request path
// /r1/{INSTANCE}/{CLASS}/{MEMBER}/{SUBSYSTEM}/{SERVICE}[/path]. Each
// identifier part is percent-decoded and checked.
func ParsePath(escaped string) (Request, error) {
	rest, ok := strings.CutPrefix(escaped, "/"+Version+"/")
	if !ok {
		return Request{}, fmt.Errorf("%w: path must start with /%s/", ErrID, Version)
	}
	var parts [5]string
	for i := range parts {
		seg, tail, more := strings.Cut(rest, "/")
		if !more && i < 4 {
			return Request{}, fmt.Errorf("%w: want /r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE", ErrID)
		}
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return Request{}, fmt.Errorf("%w: bad escape in path", ErrID)
		}
		if err := CheckPart(dec); err != nil {
			return Request{}, err
		}
		parts[i] = dec
		if more {
			rest = "/" + tail
		} else {
			rest = ""
		}
		if i < 4 {
			rest = strings.TrimPrefix(rest, "/")
		}
	}
	return Request{
		Service: ServiceID{ClientID: ClientID{Instance: parts[0], Class: parts[1], Member: parts[2], Subsystem: parts[3]}, Code: parts[4]},
		Rest:    rest,
	}, nil
}
