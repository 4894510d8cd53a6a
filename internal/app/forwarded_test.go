package app

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestForwardedFor: only a trusted proxy's X-Forwarded-For names the
// caller, and only its right-most untrusted hop.
func TestForwardedFor(t *testing.T) {
	trusted, err := ParseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseTrustedProxies([]string{"nope"}); err == nil {
		t.Error("a malformed proxy was accepted")
	}
	var got string
	h := forwardedFor(trusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }))
	for _, c := range []struct{ peer, xff, want string }{
		{"10.1.2.3:5000", "203.0.113.9", "203.0.113.9:0"},
		{"10.1.2.3:5000", "198.51.100.1, 203.0.113.9, 10.0.0.2", "203.0.113.9:0"}, // the client may prepend anything
		{"192.0.2.7:5000", "203.0.113.9", "203.0.113.9:0"},
		{"198.51.100.77:5000", "203.0.113.9", "198.51.100.77:5000"}, // not a proxy: header ignored
		{"10.1.2.3:5000", "", "10.1.2.3:5000"},
		{"10.1.2.3:5000", "garbage", "10.1.2.3:5000"},
		{"[::ffff:10.1.2.3]:5000", "2001:db8::1", "[2001:db8::1]:0"},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = c.peer
		if c.xff != "" {
			req.Header.Set("X-Forwarded-For", c.xff)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
		if got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: caller %s; want %s", c.peer, c.xff, got, c.want)
		}
	}
}
