package labels

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// Label is one barcode to print: the text it encodes and a line for the
// operator.
type Label struct {
	Text  string
	Title string
}

// Standard returns the shelfsync command, quantity and reason labels of
// the scan vocabulary (docs/DESIGN.md, "Scan vocabulary").
func Standard() []Label {
	ls := []Label{
		{"CMD:RECEIVE", "Receive: [PO:] [LOC:] items, CMD:DONE"},
		{"CMD:PUTAWAY", "Put away: item, then the bin's LOC:"},
		{"CMD:PICK", "Pick: ORD:/TASK:, LOC:, items"},
		{"CMD:COUNT", "Count: LOC: or TASK:, every item"},
		{"CMD:MOVE", "Move: LOC:from, items, LOC:to"},
		{"CMD:ADJUST", "Adjust: LOC:, REASON:, QTY:±n, item"},
		{"CMD:HOLD", "Hold: LOC:, [REASON:], [QTY:] [LOT:] items"},
		{"CMD:RELEASE", "Release held units: LOC:, [REASON:], items"},
		{"CMD:DAMAGE", "Damaged: LOC:, [REASON:], items"},
		{"CMD:PACK", "Pack & ship: ORD:, every item, [SSCC label]"},
		{"CMD:DONE", "Finish: commit the session"},
		{"CMD:CANCEL", "Abandon the open session"},
	}
	for _, n := range []int{1, 2, 3, 4, 5, 6, 10, 12, 24} {
		ls = append(ls, Label{fmt.Sprintf("QTY:%d", n), fmt.Sprintf("Quantity %d of the next item", n)})
	}
	ls = append(ls, Label{"QTY:+1", "Adjust: one more than recorded"}, Label{"QTY:-1", "Adjust: one less than recorded"})
	for _, r := range []struct{ word, why string }{
		{"DAMAGED", "damaged unit written off"}, {"SHRINKAGE", "missing, cause unknown"}, {"FOUND", "found stock"},
		{"EXPIRED", "expired goods written off"}, {"RETURNED", "customer return"},
	} {
		ls = append(ls, Label{"REASON:" + r.word, "Adjust reason: " + r.why})
	}
	return ls
}

// Page geometry (A4 portrait, mm): 3 columns × 8 rows of 63.5 × 33.9 mm
// labels, the common 24-up label stock.
const (
	pageW, pageH   = 210.0, 297.0
	cols, rows     = 3, 8
	labelW, labelH = 63.5, 33.9
	marginX        = (pageW - cols*labelW) / 2
	marginY        = (pageH - rows*labelH) / 2
	// maxModule is the narrowest bar's width (X dimension) when the label
	// is wide enough; longer texts get narrower bars, down to minModule.
	maxModule, minModule = 0.33, 0.19
	barH                 = 15.0
)

// PerPage is how many labels fit on a page.
const PerPage = cols * rows

// symbolSVG draws one symbol with its quiet zones at (x, y), at most w wide;
// it returns the SVG elements.
func symbolSVG(text string, x, y, w float64) (string, error) {
	vals, err := Encode(text)
	if err != nil {
		return "", fmt.Errorf("label %q: %w", text, err)
	}
	ws := Widths(vals)
	total := Modules(ws) + 2*QuietZone
	mod := min(maxModule, w/float64(total))
	if mod < minModule {
		return "", fmt.Errorf("label %q is too long for a %.1f mm label (%d modules): shorten it", text, labelW, total)
	}
	x += (w - float64(total)*mod) / 2 // centre
	pos := x + QuietZone*mod
	var b strings.Builder
	for i, m := range ws {
		if i%2 == 0 {
			fmt.Fprintf(&b, `<rect x="%.3f" y="%.3f" width="%.3f" height="%.3f"/>`, pos, y, float64(m)*mod, barH)
		}
		pos += float64(m) * mod
	}
	return b.String(), nil
}

func labelSVG(l Label, x, y float64) (string, error) {
	bars, err := symbolSVG(l.Text, x+1, y+7, labelW-2)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<g class="label"><rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="none" stroke="#bbb" stroke-width="0.2" stroke-dasharray="1,1"/>`, x, y, labelW, labelH)
	fmt.Fprintf(&b, `<text x="%.2f" y="%.2f" font-size="2.8" text-anchor="middle" fill="#333">%s</text>`, x+labelW/2, y+5, html.EscapeString(l.Title))
	fmt.Fprintf(&b, `<g fill="#000">%s</g>`, bars)
	fmt.Fprintf(&b, `<text x="%.2f" y="%.2f" font-size="4.2" font-family="monospace" font-weight="bold" text-anchor="middle">%s</text></g>`, x+labelW/2, y+7+barH+5.5, html.EscapeString(l.Text))
	return b.String(), nil
}

// pageSVG renders up to PerPage labels as one A4 SVG document; unit is
// "mm" for a page of its own, "" for a page inside another SVG (whose user
// unit is already the millimetre).
func pageSVG(ls []Label, unit string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g%s" height="%g%s" viewBox="0 0 %g %g" font-family="sans-serif">`, pageW, unit, pageH, unit, pageW, pageH)
	b.WriteString(`<rect width="100%" height="100%" fill="#fff"/>`)
	for i, l := range ls {
		x := marginX + float64(i%cols)*labelW
		y := marginY + float64(i/cols)*labelH
		s, err := labelSVG(l, x, y)
		if err != nil {
			return "", err
		}
		b.WriteString(s)
	}
	b.WriteString(`</svg>`)
	return b.String(), nil
}

// WriteSVG writes the labels as SVG: one A4 page per PerPage labels. With
// more than one page, pages follow each other in one SVG (a tall sheet);
// WriteHTML prints better.
func WriteSVG(w io.Writer, ls []Label) error {
	if len(ls) <= PerPage {
		s, err := pageSVG(ls, "mm")
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+s+"\n")
		return err
	}
	pages := (len(ls) + PerPage - 1) / PerPage
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<svg xmlns="http://www.w3.org/2000/svg" width="%gmm" height="%gmm" viewBox="0 0 %g %g">`, pageW, pageH*float64(pages), pageW, pageH*float64(pages))
	for p := 0; p < pages; p++ {
		s, err := pageSVG(ls[p*PerPage:min(len(ls), (p+1)*PerPage)], "")
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, `<g transform="translate(0 %g)">%s</g>`, float64(p)*pageH, s)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteHTML writes a printable HTML page: one inline SVG per A4 page, with
// page breaks between them.
func WriteHTML(w io.Writer, title string, ls []Label) error {
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title>\n", html.EscapeString(title))
	b.WriteString("<style>@page{size:A4;margin:0}body{margin:0}svg{display:block;page-break-after:always;break-after:page}</style></head><body>\n")
	for p := 0; p*PerPage < len(ls) || p == 0; p++ {
		s, err := pageSVG(ls[p*PerPage:min(len(ls), (p+1)*PerPage)], "mm")
		if err != nil {
			return err
		}
		b.WriteString(s + "\n")
	}
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
