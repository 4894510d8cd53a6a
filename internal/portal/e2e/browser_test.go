package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/notify"
)

// pageBudget is the limit on what one page transfers, fonts
// excluded.
const pageBudget = 100 << 10

// repoRoot is the module's root, where docs/ and tools/ are.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("ORTAQ_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("the browser tests need Chromium: apt-get install -y chromium (./dev test installs it), or set ORTAQ_CHROMIUM")
	return ""
}

var (
	axeOnce   sync.Once
	axeSource string
	axeErr    error
)

func axeScript(t testing.TB) string {
	t.Helper()
	axeOnce.Do(func() {
		path := os.Getenv("ORTAQ_AXE_JS")
		if path == "" {
			path = filepath.Join(repoRoot(), "tools", "browser", "node_modules", "axe-core", "axe.min.js")
		}
		b, err := os.ReadFile(path)
		axeSource, axeErr = string(b), err
	})
	if axeErr != nil {
		t.Fatalf("the browser tests need axe-core: (cd tools/browser && npm ci) (./dev test does it), or set ORTAQ_AXE_JS: %v", axeErr)
	}
	return axeSource
}

// browser is one Chromium tab on a running platform.
type browser struct {
	t    testing.TB
	ctx  context.Context
	base string
	r    *apptest.Running

	mu     sync.Mutex
	weight int64 // bytes transferred since the last navigation, fonts excluded
	fonts  map[network.RequestID]bool
	// pages visited with their weight, for the report
	visited []string
}

// newBrowser starts Chromium (headless, no network but loopback) on a
// phone-sized window.
func newBrowser(t *testing.T, r *apptest.Running) *browser {
	t.Helper()
	b := newBrowserOn(t, r.Server.URL)
	b.r = r
	return b
}

// newBrowserOn is a browser on any site at base.
func newBrowserOn(t testing.TB, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(412, 915),
		// A citizen's browser in Kazakhstan asks for the state language.
		chromedp.Flag("lang", "kk-KZ"),
		chromedp.Flag("accept-lang", "kk-KZ,kk,ru"),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base, fonts: map[network.RequestID]bool{}}
	// Open the tab first, so that the listener misses nothing.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventResponseReceived:
			if e.Type == network.ResourceTypeFont {
				b.fonts[e.RequestID] = true
			}
		case *network.EventLoadingFinished:
			if !b.fonts[e.RequestID] {
				b.weight += int64(e.EncodedDataLength)
			}
		}
	})
	if err != nil {
		t.Fatalf("listening to Chromium: %v", err)
	}
	return b
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v (at %s)", err, b.location())
	}
}

func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// path is the current page's path and query.
func (b *browser) path() string {
	return strings.TrimPrefix(b.location(), b.base)
}

func (b *browser) resetWeight() {
	b.mu.Lock()
	b.weight = 0
	b.mu.Unlock()
}

// visit opens path and checks the page (axe, weight); it returns the
// HTTP status.
func (b *browser) visit(path string) int64 {
	b.t.Helper()
	b.resetWeight()
	res, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(b.base+path))
	if err != nil {
		b.t.Fatalf("opening %s: %v", path, err)
	}
	b.check()
	return res.Status
}

// click clicks an element (CSS selector) that leads to another page, waits
// for it and checks it; it returns the HTTP status.
func (b *browser) click(selector string) int64 {
	b.t.Helper()
	b.resetWeight()
	res, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(selector), chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("clicking %s: %v (at %s)", selector, err, b.location())
	}
	b.check()
	return res.Status
}

// fill sets an input's value (CSS selector).
func (b *browser) fill(selector, value string) {
	b.t.Helper()
	b.do(chromedp.SetValue(chromedp.CSS(selector), value))
}

func (b *browser) attr(selector, name string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.CSS(selector), name))
	if err != nil || !v.Exists {
		b.t.Fatalf("%s has no %s attribute (at %s): %v", selector, name, b.location(), err)
	}
	return v.Value
}

func (b *browser) count(selector string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, selector)))
	if err != nil {
		b.t.Fatalf("counting %s: %v", selector, err)
	}
	return n
}

func (b *browser) has(selector string) bool { return b.count(selector) > 0 }

type axeResult struct {
	Violations []struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target []any  `json:"target"`
			HTML   string `json:"html"`
		} `json:"nodes"`
	} `json:"violations"`
}

// check runs axe-core on the page and holds its transferred weight to the
// budget; both failures name the page.
func (b *browser) check() {
	b.t.Helper()
	path := b.path()
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](axeScript(b.t)+";true")); err != nil {
		b.t.Fatalf("loading axe-core into %s: %v", path, err)
	}
	res, err := chromedp.Run(b.ctx, chromedp.Evaluate[axeResult](`axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}, resultTypes: ['violations']})`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("axe on %s: %v", path, err)
	}
	for _, v := range res.Violations {
		nodes, _ := json.Marshal(v.Nodes)
		b.t.Errorf("axe on %s: %s (%s): %s\n%.800s", path, v.ID, v.Impact, v.Help, nodes)
	}
	b.mu.Lock()
	weight := b.weight
	b.mu.Unlock()
	if weight > pageBudget {
		b.t.Errorf("%s transferred %d bytes; the budget is %d", path, weight, pageBudget)
	}
	b.visited = append(b.visited, fmt.Sprintf("%s %d B", path, weight))
}

// screenshot keeps a picture of the page under docs/screenshots when
// ORTAQ_SCREENSHOTS=1.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if os.Getenv("ORTAQ_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	dir := filepath.Join(repoRoot(), "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

// lastSMS returns the code of the last SMS to phone.
func (b *browser) lastSMS(phone string) string {
	b.t.Helper()
	return b.smsCode(phone, "")
}

// smsCode returns the code of the last SMS to phone whose text contains
// about, waiting for it to be sent.
func (b *browser) smsCode(phone, about string) string {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sent, err := notify.DevOutbox(context.Background(), b.r.DB.Pool, notify.OutboxFilter{To: phone, Channel: notify.SMS, Limit: 1})
		if err != nil {
			b.t.Fatal(err)
		}
		if len(sent) == 1 && strings.Contains(sent[0].Body, about) {
			if code := sixDigits.FindString(sent[0].Body); code != "" {
				return code
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("no SMS code for %s", phone)
	return ""
}

// signIn signs in through the login page: password, then the SMS code.
func (b *browser) signIn(subject, password, phone string, officer bool) {
	b.t.Helper()
	b.visit("/login")
	b.login(subject, password, phone, officer)
}

// login signs in on the login page the browser is on, and follows where
// it leads (the page that sent the visitor to sign in).
func (b *browser) login(subject, password, phone string, officer bool) {
	b.t.Helper()
	if officer {
		b.do(chromedp.Click(chromedp.CSS("#kind-officer")))
	}
	b.fill("#subject", subject)
	b.fill("#password", password)
	b.click(`form[action="/login"] button[type="submit"]`)
	b.fill("#code", b.lastSMS(phone))
	b.click(`form[action="/login/code"] button[type="submit"]`)
	if !b.has(`form[action="/logout"]`) {
		b.t.Fatalf("not signed in after the code (at %s)", b.location())
	}
}

// waitFor reloads the page until selector matches (the engine works
// asynchronously), then checks the page once more.
func (b *browser) waitFor(selector string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for !b.has(selector) {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s did not appear within %s (at %s)", selector, within, b.location())
		}
		time.Sleep(200 * time.Millisecond)
		if _, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(b.location())); err != nil {
			b.t.Fatalf("reloading: %v", err)
		}
	}
	b.check()
}

// fetch downloads path with the browser's cookies (a file the browser
// would save rather than show) and returns the response and its body.
func (b *browser) fetch(path string) (*http.Response, []byte) {
	b.t.Helper()
	cookies, err := chromedp.Run(b.ctx, chromedp.Action[[]*network.Cookie](func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base}})
		return res.Cookies, err
	}))
	if err != nil {
		b.t.Fatalf("reading the browser's cookies: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, body
}
