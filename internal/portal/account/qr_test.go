package account

import (
	"regexp"
	"strings"
	"testing"

	"rsc.io/qr"
)

// TestQRSVGDrawsEveryModule: the SVG's path covers exactly the black
// modules of the code, offset by the quiet zone, and carries no style.
func TestQRSVGDrawsEveryModule(t *testing.T) {
	const text = "https://portal.example/verify/0193a000-0000-7000-8000-000000000000"
	svg, err := qrSVG(text, "document-qr", `QR <"x">`)
	if err != nil {
		t.Fatal(err)
	}
	s := string(svg)
	if strings.Contains(s, "style") || !strings.Contains(s, `fill="#000000"`) || !strings.Contains(s, `id="document-qr"`) ||
		!strings.Contains(s, "QR &lt;&#34;x&#34;&gt;") {
		t.Fatalf("svg: %.300s", s)
	}
	code, _ := qr.Encode(text, qr.M)
	drawn := map[[2]int]bool{}
	for _, m := range regexp.MustCompile(`M(\d+) (\d+)h(\d+)`).FindAllStringSubmatch(s, -1) {
		var x, y, run int
		for i, p := range []*int{&x, &y, &run} {
			for _, c := range m[i+1] {
				*p = *p*10 + int(c-'0')
			}
		}
		for i := range run {
			drawn[[2]int{x + i - qrQuiet, y - qrQuiet}] = true
		}
	}
	for y := range code.Size {
		for x := range code.Size {
			if code.Black(x, y) != drawn[[2]int{x, y}] {
				t.Fatalf("module %d,%d: black %v, drawn %v", x, y, code.Black(x, y), drawn[[2]int{x, y}])
			}
		}
	}
}
