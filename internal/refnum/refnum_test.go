package refnum

import "testing"

func TestNewIsValid(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		n := New('A')
		if !Valid(n) {
			t.Fatalf("New() = %q, which Valid rejects", n)
		}
		if seen[n] {
			t.Fatalf("New() repeated %q within 1000 draws", n)
		}
		seen[n] = true
	}
}

func TestValidCatchesTypos(t *testing.T) {
	n := New('D')
	for i := 2; i < len(n); i++ {
		if n[i] == '-' {
			continue
		}
		b := []byte(n)
		b[i] = '0' + (b[i]-'0'+1)%10
		if Valid(string(b)) {
			t.Errorf("Valid(%q) = true after changing one digit of %q", b, n)
		}
	}
	for _, bad := range []string{"", "A", "A-1234-5678-901", "1-2345-6789-0123", "A-1234-5678-90x2", "A-1234-5678-90123"} {
		if Valid(bad) {
			t.Errorf("Valid(%q) = true; want false", bad)
		}
	}
}

func FuzzValid(f *testing.F) {
	f.Add("A-4829-1372-8812")
	f.Add("d 0000 0000 0000")
	f.Fuzz(func(t *testing.T, s string) { _ = Valid(s) })
}
