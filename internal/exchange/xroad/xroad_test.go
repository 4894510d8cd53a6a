package xroad

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		in, svc, rest string
		ok            bool
	}{
		{"/r1/KZ/GOV/123/reg/person", "KZ/GOV/123/reg/person", "", true},
		{"/r1/KZ/GOV/123/reg/person/", "KZ/GOV/123/reg/person", "/", true},
		{"/r1/KZ/GOV/123/reg/person/a/b%2Fc", "KZ/GOV/123/reg/person", "/a/b%2Fc", true},
		{"/r1/KZ/GOV/12%203/reg/person", "", "", false},
		{"/r1/KZ/GOV/a%2Fb/reg/person", "", "", false},
		{"/r1/KZ/GOV/123/reg", "", "", false},
		{"/r1/KZ/GOV/123//person", "", "", false},
		{"/r2/KZ/GOV/123/reg/person", "", "", false},
		{"/r1/KZ/GOV/123/reg/%zz", "", "", false},
		{"", "", "", false},
	} {
		got, err := ParsePath(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParsePath(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && (got.Service.String() != tc.svc || got.Rest != tc.rest) {
			t.Errorf("ParsePath(%q) = %s %q, want %s %q", tc.in, got.Service, got.Rest, tc.svc, tc.rest)
		}
	}
}

func TestServicePathRoundTrip(t *testing.T) {
	s, err := ParseService("KZ/GOV/1 2/reg/x")
	if err == nil {
		t.Fatalf("space accepted: %v", s)
	}
	s, _ = ParseService("KZ/GOV/БИН-1/reg/get.person")
	r, err := ParsePath(s.Path("/p?q"))
	if err != nil || r.Service != s {
		t.Fatalf("round trip: %v %v", r, err)
	}
}

func TestParseHeaders(t *testing.T) {
	h := http.Header{}
	if _, err := ParseHeaders(h); err == nil {
		t.Fatal("missing client accepted")
	}
	h.Set(HeaderClient, "KZ/GOV/123/sys")
	h.Set(HeaderID, "abc")
	h.Set(HeaderUserID, "KZ870101300123")
	got, err := ParseHeaders(h)
	if err != nil || got.Client.Subsystem != "sys" || got.ID != "abc" || got.UserID != "KZ870101300123" {
		t.Fatalf("ParseHeaders = %+v, %v", got, err)
	}
	h.Add(HeaderID, "again")
	if _, err := ParseHeaders(h); err == nil {
		t.Fatal("repeated id accepted")
	}
	h.Del(HeaderID)
	h.Set(HeaderIssue, strings.Repeat("x", MaxHeaderLen+1))
	if _, err := ParseHeaders(h); err == nil {
		t.Fatal("long issue accepted")
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, 403, ErrAccessDenied, "no access", "id-1")
	if rec.Header().Get(HeaderError) != ErrAccessDenied || !strings.Contains(rec.Body.String(), `"type":"Server.ServerProxy.AccessDenied"`) {
		t.Fatalf("got %v %s", rec.Header(), rec.Body)
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/r1/KZ/GOV/123/reg/person", "/r1/KZ/GOV/123/reg/p/a?b", "/r1/%", "/r1/a/b/c/d/e/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParsePath(s)
		if err != nil {
			return
		}
		// Whatever parses must round-trip through its own path.
		r2, err := ParsePath(r.Service.Path(r.Rest))
		if err != nil || r2 != r {
			t.Fatalf("round trip of %q: %+v vs %+v (%v)", s, r, r2, err)
		}
	})
}

func FuzzParseHeaders(f *testing.F) {
	f.Add("KZ/GOV/123/sys", "id", "user", "issue")
	f.Add("KZ/GOV/123", "", "", "")
	f.Fuzz(func(t *testing.T, client, id, user, issue string) {
		h := http.Header{}
		h[HeaderClient] = []string{client}
		h[HeaderID] = []string{id}
		h[HeaderUserID] = []string{user}
		h[HeaderIssue] = []string{issue}
		got, err := ParseHeaders(h)
		if err != nil {
			return
		}
		c, err := ParseClient(got.Client.String())
		if err != nil || c != got.Client {
			t.Fatalf("client %q does not round-trip: %v", client, err)
		}
	})
}
