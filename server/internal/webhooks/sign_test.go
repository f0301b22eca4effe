package webhooks

import "testing"

// TestSignMatchesHMACSHA256Vector checks Sign against a fixed vector
// rather than against Verify (which calls Sign, so a signature that
// ignored the secret would pass both): RFC 4231 test case 2, key "Jefe".
// A receiver computing HMAC-SHA256 itself gets the same bytes.
func TestSignMatchesHMACSHA256Vector(t *testing.T) {
	const (
		secret = "Jefe"
		body   = "what do ya want for nothing?"
		want   = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	)
	if got := Sign(secret, []byte(body)); got != want {
		t.Fatalf("Sign(%q, %q) = %s, want %s", secret, body, got, want)
	}
	if !Verify(secret, []byte(body), want) {
		t.Fatal("Verify refuses the vector's signature")
	}
	for name, c := range map[string]struct{ secret, body, sig string }{
		"wrong secret":    {"jefe", body, want},
		"empty secret":    {"", body, want},
		"changed body":    {secret, body + " ", want},
		"no prefix":       {secret, body, want[len("sha256="):]},
		"truncated":       {secret, body, want[:len(want)-2]},
		"other algorithm": {secret, body, "sha1=" + want[len("sha256="):]},
		"empty signature": {secret, body, ""},
	} {
		if Verify(c.secret, []byte(c.body), c.sig) {
			t.Errorf("%s: Verify accepted it", name)
		}
	}
	if Sign("another secret", []byte(body)) == want {
		t.Fatal("the signature does not depend on the secret")
	}
}
