package barcodesim

import (
	"strings"
	"testing"
)

// FuzzLoadCatalog: catalogs are operator-supplied files. Loading never
// panics and yields no empty entries.
func FuzzLoadCatalog(f *testing.F) {
	f.Add("gtin,sku\n4006381333931,SKU-1\n")
	f.Add("# comment\n\n\"5901234123457\",x\n01<GS>10\n")
	f.Fuzz(func(t *testing.T, s string) {
		cat, err := LoadCatalog(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, c := range cat {
			if c == "" {
				t.Fatal("empty catalog entry")
			}
		}
		_ = GuessCodeType(s)
	})
}
