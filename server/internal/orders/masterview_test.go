package orders

import "testing"

// One recompute pass reads a location's sellability and a sku's safety
// stock once however often it asks, and answers what Config's functions
// answer.
func TestMasterViewReadsOncePerPass(t *testing.T) {
	reads := map[string]int{}
	s := &Service{cfg: Config{
		Sellable: func(wh, loc string) bool { reads["sell "+wh+"/"+loc]++; return loc != "DOCK" },
		Safety:   func(wh, sku string) int64 { reads["safe "+wh+"/"+sku]++; return int64(len(sku)) },
	}}
	md := s.masterView()
	for range 3 {
		for _, loc := range []string{"A-1", "DOCK", "A-1"} {
			if got, want := md.sellable("w", loc), loc != "DOCK"; got != want {
				t.Fatalf("sellable(%s) = %v, want %v", loc, got, want)
			}
		}
		if got := md.safety("w", "MILK"); got != 4 {
			t.Fatalf("safety = %d, want 4", got)
		}
	}
	for k, n := range reads {
		if n != 1 {
			t.Fatalf("%s read %d times in one pass", k, n)
		}
	}
	if len(reads) != 3 {
		t.Fatalf("reads %v: want A-1, DOCK and MILK", reads)
	}
	s.masterView().sellable("w", "A-1") // a new pass reads again
	if reads["sell w/A-1"] != 2 {
		t.Fatal("a new pass did not read again")
	}
}
