package account

import (
	"fmt"
	"html"
	"html/template"
	"strings"

	"rsc.io/qr"
)

// qrQuiet is the quiet zone around a QR code, in modules, as ISO/IEC 18004
// asks (four).
const qrQuiet = 4

// qrSVG draws text as a QR code (error correction level M) in an inline
// SVG: one path of black modules on a white square, colours as fill
// attributes (the Content-Security-Policy allows no style attributes), so
// that it scales sharply and costs a few kilobytes. id and label name the
// image for tests and screen readers.
func qrSVG(text, id, label string) (template.HTML, error) {
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return "", err
	}
	n := code.Size + 2*qrQuiet
	var d strings.Builder
	for y := range code.Size {
		for x := 0; x < code.Size; {
			if !code.Black(x, y) {
				x++
				continue
			}
			run := 1
			for x+run < code.Size && code.Black(x+run, y) {
				run++
			}
			fmt.Fprintf(&d, "M%d %dh%dv1h-%dz", x+qrQuiet, y+qrQuiet, run, run)
			x += run
		}
	}
	label = html.EscapeString(label)
	return template.HTML(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" id="%s" class="qr" viewBox="0 0 %d %d" width="240" height="240" role="img" aria-labelledby="%s-title" shape-rendering="crispEdges">`+
		`<title id="%s-title">%s</title><rect width="%d" height="%d" fill="#ffffff"/><path fill="#000000" d="%s"/></svg>`,
		html.EscapeString(id), n, n, html.EscapeString(id), html.EscapeString(id), label, n, n, d.String())), nil
}
