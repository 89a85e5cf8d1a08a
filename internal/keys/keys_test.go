package keys

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testRing(t testing.TB, seed string) *Keyring {
	t.Helper()
	k, err := NewKeyring([]byte(strings.Repeat(seed, 32)[:32]))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewKeyringNeedsEnoughSecret(t *testing.T) {
	if _, err := NewKeyring(make([]byte, 31)); err == nil {
		t.Fatal("a 31-byte master was accepted")
	}
	if len(GenerateMaster()) != 32 || bytes.Equal(GenerateMaster(), GenerateMaster()) {
		t.Fatal("GenerateMaster is not 32 random bytes")
	}
}

func TestLookupAndSuppressionHashes(t *testing.T) {
	a, b := testRing(t, "a"), testRing(t, "b")
	if !bytes.Equal(a.Lookup("x@y.example"), a.Lookup("x@y.example")) {
		t.Fatal("Lookup is not deterministic")
	}
	if len(a.Lookup("x@y.example")) != 32 {
		t.Fatal("Lookup is not 32 bytes")
	}
	if bytes.Equal(a.Lookup("x@y.example"), a.Lookup("z@y.example")) {
		t.Fatal("different addresses, same lookup")
	}
	if bytes.Equal(a.Lookup("x@y.example"), b.Lookup("x@y.example")) {
		t.Fatal("different masters, same lookup")
	}
	if bytes.Equal(a.Lookup("x@y.example"), a.SuppressionHash("x@y.example")) {
		t.Fatal("lookup and suppression hashes share a key")
	}
}

func TestDataKeyRoundTripAndTamper(t *testing.T) {
	k := testRing(t, "a")
	dk, wrapped, err := k.NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	c := dk.SealString("ann@example.com", "row 1 email")
	if bytes.Contains(c, []byte("ann@")) {
		t.Fatal("ciphertext contains the plaintext")
	}
	again, err := k.UnwrapDataKey(wrapped)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := again.OpenString(c, "row 1 email"); err != nil || p != "ann@example.com" {
		t.Fatalf("round trip: %q %v", p, err)
	}
	if _, err := again.OpenString(c, "row 2 email"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("moved ciphertext opened: %v", err)
	}
	for i := range c {
		bad := bytes.Clone(c)
		bad[i] ^= 1
		if _, err := again.OpenString(bad, "row 1 email"); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("flipping byte %d of the ciphertext went unnoticed", i)
		}
	}
	for i := range wrapped {
		bad := bytes.Clone(wrapped)
		bad[i] ^= 1
		if _, err := k.UnwrapDataKey(bad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("flipping byte %d of the wrapped key went unnoticed", i)
		}
	}
	if _, err := testRing(t, "b").UnwrapDataKey(wrapped); !errors.Is(err, ErrDecrypt) {
		t.Fatal("another instance unwrapped the key")
	}
	if _, err := k.UnwrapDataKey(nil); !errors.Is(err, ErrDecrypt) {
		t.Fatal("empty wrapped key accepted")
	}
	if dk.SealString("", "x") != nil {
		t.Fatal("empty string should seal to nil")
	}
	if s, err := dk.OpenString(nil, "x"); s != "" || err != nil {
		t.Fatal("nil should open to the empty string")
	}
	if bytes.Equal(dk.SealString("same", "a"), dk.SealString("same", "a")) {
		t.Fatal("nonces repeat: equal plaintexts give equal ciphertexts")
	}
}

func TestSignVerify(t *testing.T) {
	k := testRing(t, "a")
	tok := k.Sign("confirm", []byte("payload-42"))
	if strings.ContainsAny(tok, "+/=") {
		t.Fatalf("token not URL-safe: %s", tok)
	}
	p, err := k.Verify("confirm", tok)
	if err != nil || string(p) != "payload-42" {
		t.Fatalf("verify: %q %v", p, err)
	}
	if _, err := k.Verify("unsubscribe", tok); !errors.Is(err, ErrBadToken) {
		t.Fatal("token verified for another purpose")
	}
	if _, err := testRing(t, "b").Verify("confirm", tok); !errors.Is(err, ErrBadToken) {
		t.Fatal("token verified under another master")
	}
	raw := []byte(tok)
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] = 'A' + (bad[i]+1)%26
		if string(bad) == tok {
			continue
		}
		if p, err := k.Verify("confirm", string(bad)); err == nil && string(p) != "payload-42" {
			t.Fatalf("altered token verified with payload %q", p)
		}
	}
	for _, bad := range []string{"", "!!!", "c2hvcnQ"} {
		if _, err := k.Verify("confirm", bad); !errors.Is(err, ErrBadToken) {
			t.Fatalf("Verify(%q) = %v", bad, err)
		}
	}
}

func TestSecretTokens(t *testing.T) {
	a, ha := NewSecretToken("tid_")
	b, _ := NewSecretToken("tid_")
	if !strings.HasPrefix(a, "tid_") || len(a) < 40 || a == b {
		t.Fatalf("tokens %q %q", a, b)
	}
	if !bytes.Equal(ha, HashSecretToken(a)) || bytes.Equal(ha, HashSecretToken(b)) {
		t.Fatal("hash mismatch")
	}
}

func TestPasswords(t *testing.T) {
	Argon2Params.Memory, Argon2Params.Time = 1024, 1
	h, err := HashPassword("correct horse battery staple")
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=2$") {
		t.Fatalf("hash %q %v", h, err)
	}
	if ok, err := VerifyPassword(h, "correct horse battery staple"); !ok || err != nil {
		t.Fatal("right password rejected")
	}
	if ok, _ := VerifyPassword(h, "Correct horse battery staple"); ok {
		t.Fatal("wrong password accepted")
	}
	if h2, _ := HashPassword("correct horse battery staple"); h2 == h {
		t.Fatal("salt not random")
	}
	if _, err := HashPassword(strings.Repeat("x", MaxPasswordBytes+1)); err == nil {
		t.Fatal("over-long password hashed")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$aa$bb", "$argon2id$v=19$m=x,t=1,p=1$aa$bb", "$argon2id$v=19$m=1024,t=1,p=2$!!$bb"} {
		if _, err := VerifyPassword(bad, "pw"); err == nil {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	k := testRing(b, "a")
	for b.Loop() {
		k.Lookup("someone.long@example.com")
	}
}

func BenchmarkNewDataKey(b *testing.B) {
	k := testRing(b, "a")
	for b.Loop() {
		k.NewDataKey()
	}
}

func BenchmarkUnwrapDataKey(b *testing.B) {
	k := testRing(b, "a")
	_, w, _ := k.NewDataKey()
	for b.Loop() {
		k.UnwrapDataKey(w)
	}
}

func BenchmarkSealOpen(b *testing.B) {
	dk, _, _ := testRing(b, "a").NewDataKey()
	for b.Loop() {
		dk.OpenString(dk.SealString("someone.long@example.com", "aad"), "aad")
	}
}
