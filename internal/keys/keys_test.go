package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
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

// flipEach calls f with a copy of b that has byte i altered, for every i.
func flipEach(b []byte, f func(i int, bad []byte)) {
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x01
		f(i, bad)
	}
}

func TestNewKeyringNeedsEnoughSecret(t *testing.T) {
	for _, n := range []int{0, 16, 31} {
		if _, err := NewKeyring(make([]byte, n)); err == nil {
			t.Fatalf("a %d-byte master was accepted", n)
		}
	}
	m := GenerateMaster()
	if len(m) != 32 || bytes.Equal(m, GenerateMaster()) {
		t.Fatal("GenerateMaster is not 32 random bytes")
	}
	if _, err := NewKeyring(m); err != nil {
		t.Fatal(err)
	}
	if _, err := NewKeyring(make([]byte, 64)); err != nil {
		t.Fatal("a 64-byte master was refused")
	}
}

func TestKeyringDoesNotPrintSecrets(t *testing.T) {
	k := testRing(t, "a")
	dk, _, _ := k.NewDataKey()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		for _, v := range []any{k, dk} {
			if s := fmt.Sprintf(verb, v); !strings.Contains(s, "redacted") {
				t.Fatalf("%s printed %q", verb, s)
			}
		}
	}
}

func TestLookupAndSuppressionHashes(t *testing.T) {
	a, b := testRing(t, "a"), testRing(t, "b")
	again := testRing(t, "a")
	const addr = "x@y.example"
	if !bytes.Equal(a.Lookup(addr), a.Lookup(addr)) || !bytes.Equal(a.Lookup(addr), again.Lookup(addr)) {
		t.Fatal("Lookup is not deterministic")
	}
	if len(a.Lookup(addr)) != 32 || len(a.SuppressionHash(addr)) != 32 {
		t.Fatal("hashes are not 32 bytes")
	}
	if bytes.Equal(a.Lookup(addr), a.Lookup("z@y.example")) {
		t.Fatal("different addresses, same lookup")
	}
	if bytes.Equal(a.Lookup(addr), b.Lookup(addr)) || bytes.Equal(a.SuppressionHash(addr), b.SuppressionHash(addr)) {
		t.Fatal("different masters, same hash")
	}
	if bytes.Equal(a.Lookup(addr), a.SuppressionHash(addr)) {
		t.Fatal("lookup and suppression hashes share a key")
	}
	if !bytes.Equal(a.SuppressionHash(addr), again.SuppressionHash(addr)) {
		t.Fatal("SuppressionHash is not deterministic")
	}
	// The pooled scratch buffer must not leak one input into the next.
	long := strings.Repeat("l", 10000) + addr
	a.Lookup(long)
	if !bytes.Equal(a.Lookup(addr), again.Lookup(addr)) {
		t.Fatal("Lookup depends on an earlier call")
	}
}

func TestDataKeyRoundTripAndTamper(t *testing.T) {
	k := testRing(t, "a")
	dk, wrapped, err := k.NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	c := dk.SealString("ann@example.com", "subscriber:1:email")
	if bytes.Contains(c, []byte("ann@")) {
		t.Fatal("ciphertext contains the plaintext")
	}
	if c[0] != version1 || len(c) != 1+12+len("ann@example.com")+16 {
		t.Fatalf("unexpected layout: %d bytes, version %d", len(c), c[0])
	}
	again, err := k.UnwrapDataKey(wrapped)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := again.OpenString(c, "subscriber:1:email"); err != nil || p != "ann@example.com" {
		t.Fatalf("round trip: %q %v", p, err)
	}
	for _, aad := range []string{"subscriber:2:email", "subscriber:1:name", ""} {
		if _, err := again.OpenString(c, aad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("ciphertext opened under aad %q: %v", aad, err)
		}
	}
	flipEach(c, func(i int, bad []byte) {
		if _, err := again.OpenString(bad, "subscriber:1:email"); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("flipping byte %d of the ciphertext went unnoticed", i)
		}
	})
	flipEach(wrapped, func(i int, bad []byte) {
		if _, err := k.UnwrapDataKey(bad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("flipping byte %d of the wrapped key went unnoticed", i)
		}
	})
	for _, bad := range [][]byte{nil, wrapped[:len(wrapped)-1], append(bytes.Clone(wrapped), 0)} {
		if _, err := k.UnwrapDataKey(bad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("wrapped key of %d bytes accepted", len(bad))
		}
	}
	if _, err := testRing(t, "b").UnwrapDataKey(wrapped); !errors.Is(err, ErrDecrypt) {
		t.Fatal("another instance unwrapped the key")
	}
	other, _, _ := k.NewDataKey()
	if _, err := other.OpenString(c, "subscriber:1:email"); !errors.Is(err, ErrDecrypt) {
		t.Fatal("another person's key opened the ciphertext")
	}
	if _, err := dk.Open(c[:12], nil); !errors.Is(err, ErrDecrypt) {
		t.Fatal("truncated ciphertext accepted")
	}
}

func TestDataKeyEdgeCases(t *testing.T) {
	dk, _, _ := testRing(t, "a").NewDataKey()
	if dk.SealString("", "x") != nil {
		t.Fatal("empty string should seal to nil")
	}
	for _, c := range [][]byte{nil, {}} {
		if s, err := dk.OpenString(c, "x"); s != "" || err != nil {
			t.Fatalf("%#v should open to the empty string", c)
		}
	}
	// Seal itself keeps empty plaintexts: they are still authenticated.
	c := dk.Seal(nil, []byte("x"))
	if p, err := dk.Open(c, []byte("x")); err != nil || len(p) != 0 {
		t.Fatalf("empty Seal round trip: %q %v", p, err)
	}
	if bytes.Equal(dk.SealString("same", "a"), dk.SealString("same", "a")) {
		t.Fatal("nonces repeat: equal plaintexts give equal ciphertexts")
	}
	bin := []byte{0, 1, 2, 0xff}
	if p, err := dk.Open(dk.Seal(bin, nil), nil); err != nil || !bytes.Equal(p, bin) {
		t.Fatalf("binary round trip: %v %v", p, err)
	}
}

func TestConcurrentUse(t *testing.T) {
	k := testRing(t, "a")
	dk, wrapped, _ := k.NewDataKey()
	want := k.Lookup("x@y.example")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				aad := fmt.Sprintf("subscriber:%d:%d", g, i)
				if p, err := dk.OpenString(dk.SealString("ann@example.com", aad), aad); err != nil || p != "ann@example.com" {
					t.Errorf("concurrent round trip: %q %v", p, err)
					return
				}
				if !bytes.Equal(k.Lookup("x@y.example"), want) {
					t.Error("concurrent Lookup differs")
					return
				}
				if _, err := k.UnwrapDataKey(wrapped); err != nil {
					t.Error(err)
					return
				}
				if _, err := k.Verify("click", k.Sign("click", []byte(aad))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestInstanceSecretsAndReceiptKey(t *testing.T) {
	a, b := testRing(t, "a"), testRing(t, "b")
	c := a.SealInstance([]byte("dkim private key"), []byte("dkim:1:sel"))
	if p, err := a.OpenInstance(c, []byte("dkim:1:sel")); err != nil || string(p) != "dkim private key" {
		t.Fatalf("instance round trip: %q %v", p, err)
	}
	if _, err := a.OpenInstance(c, []byte("dkim:2:sel")); !errors.Is(err, ErrDecrypt) {
		t.Fatal("instance secret opened under another aad")
	}
	if _, err := b.OpenInstance(c, []byte("dkim:1:sel")); !errors.Is(err, ErrDecrypt) {
		t.Fatal("instance secret opened under another master")
	}
	// The data-key wrapping key must not open instance secrets, nor the reverse.
	if _, err := a.UnwrapDataKey(a.SealInstance(make([]byte, 32), wrapAAD)); !errors.Is(err, ErrDecrypt) {
		t.Fatal("instance key and wrapping key are the same")
	}
	pub := a.ReceiptKey().Public().(ed25519.PublicKey)
	if !pub.Equal(testRing(t, "a").ReceiptKey().Public()) || pub.Equal(b.ReceiptKey().Public()) {
		t.Fatal("receipt key is not derived from the master alone")
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
	if tok != testRing(t, "a").Sign("confirm", []byte("payload-42")) {
		t.Fatal("Sign is not deterministic")
	}
	for _, purpose := range []string{"unsubscribe", "confirm ", "Confirm", ""} {
		if _, err := k.Verify(purpose, tok); !errors.Is(err, ErrBadToken) {
			t.Fatalf("token verified for purpose %q", purpose)
		}
	}
	if _, err := testRing(t, "b").Verify("confirm", tok); !errors.Is(err, ErrBadToken) {
		t.Fatal("token verified under another master")
	}
	// Every other spelling of the token fails, including ones differing only in the
	// unused low bits of the last character.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range tok {
		for _, r := range alphabet {
			bad := tok[:i] + string(r) + tok[i+1:]
			if bad == tok {
				continue
			}
			if _, err := k.Verify("confirm", bad); !errors.Is(err, ErrBadToken) {
				t.Fatalf("altered token %q verified", bad)
			}
		}
	}
	for _, bad := range []string{"", "!!!", "c2hvcnQ", tok + "A", tok[1:], tok[:len(tok)-1], tok + "="} {
		if _, err := k.Verify("confirm", bad); !errors.Is(err, ErrBadToken) {
			t.Fatalf("Verify(%q) = %v", bad, err)
		}
	}
	// Empty and binary payloads survive.
	for _, payload := range [][]byte{nil, {0, 0xff, '/'}} {
		p, err := k.Verify("x", k.Sign("x", payload))
		if err != nil || !bytes.Equal(p, payload) {
			t.Fatalf("payload %v: %v %v", payload, p, err)
		}
	}
}

func TestSignRejectsAmbiguousPurpose(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a purpose containing NUL was accepted")
		}
	}()
	testRing(t, "a").Sign("a\x00b", nil)
}

func TestSecretTokens(t *testing.T) {
	a, ha := NewSecretToken("tid_")
	b, _ := NewSecretToken("tid_")
	if !strings.HasPrefix(a, "tid_") || len(a) != len("tid_")+43 || a == b {
		t.Fatalf("tokens %q %q", a, b)
	}
	if strings.ContainsAny(a, "+/=") {
		t.Fatalf("token not URL-safe: %s", a)
	}
	if !bytes.Equal(ha, HashSecretToken(a)) || bytes.Equal(ha, HashSecretToken(b)) || len(ha) != 32 {
		t.Fatal("hash mismatch")
	}
}

func cheapArgon2(t testing.TB) {
	saved := Argon2Params
	t.Cleanup(func() { Argon2Params = saved })
	Argon2Params.Memory, Argon2Params.Time = 1024, 1
}

func TestPasswords(t *testing.T) {
	cheapArgon2(t)
	const pw = "correct horse battery staple"
	h, err := HashPassword(pw)
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=2$") {
		t.Fatalf("hash %q %v", h, err)
	}
	if ok, err := VerifyPassword(h, pw); !ok || err != nil {
		t.Fatal("right password rejected")
	}
	for _, wrong := range []string{"Correct horse battery staple", "", pw + " "} {
		if ok, err := VerifyPassword(h, wrong); ok || err != nil {
			t.Fatalf("wrong password %q: %v %v", wrong, ok, err)
		}
	}
	if h2, _ := HashPassword(pw); h2 == h {
		t.Fatal("salt not random")
	}
	long := strings.Repeat("x", MaxPasswordBytes+1)
	if _, err := HashPassword(long); err == nil {
		t.Fatal("over-long password hashed")
	}
	if ok, err := VerifyPassword(h, long); ok || err != nil {
		t.Fatalf("over-long password: %v %v", ok, err)
	}
	if _, err := HashPassword(strings.Repeat("x", MaxPasswordBytes)); err != nil {
		t.Fatal("password of the maximum length refused")
	}
	// Hashes made with other parameters still verify: they are read from the string.
	Argon2Params.Memory, Argon2Params.Time, Argon2Params.Threads = 2048, 2, 1
	if ok, err := VerifyPassword(h, pw); !ok || err != nil {
		t.Fatal("hash made under earlier parameters rejected")
	}
}

func TestMalformedPasswordHashes(t *testing.T) {
	cheapArgon2(t)
	h, _ := HashPassword("pw")
	parts := strings.Split(h, "$")
	salt, sum := parts[4], parts[5]
	bad := []string{
		"", "$", "argon2id", h + "$", "x" + h,
		"$argon2i$v=19$m=1024,t=1,p=2$" + salt + "$" + sum,
		"$argon2id$v=16$m=1024,t=1,p=2$" + salt + "$" + sum,
		"$argon2id$v=19abc$m=1024,t=1,p=2$" + salt + "$" + sum,
		"$argon2id$v=19$m=x,t=1,p=2$" + salt + "$" + sum,
		"$argon2id$v=19$m=1024,t=1$" + salt + "$" + sum,
		"$argon2id$v=19$m=1024,t=1,p=2x$" + salt + "$" + sum,
		"$argon2id$v=19$t=1,m=1024,p=2$" + salt + "$" + sum,
		"$argon2id$v=19$m=1024,t=0,p=2$" + salt + "$" + sum,
		"$argon2id$v=19$m=1024,t=1,p=0$" + salt + "$" + sum,
		"$argon2id$v=19$m=1024,t=1,p=256$" + salt + "$" + sum,
		"$argon2id$v=19$m=4294967295,t=1,p=2$" + salt + "$" + sum, // would allocate 4 TiB
		"$argon2id$v=19$m=1024,t=1,p=-1$" + salt + "$" + sum,
		"$argon2id$v=19$m=1024,t=1,p=2$!!$" + sum,
		"$argon2id$v=19$m=1024,t=1,p=2$" + salt + "$" + sum + "=",
		"$argon2id$v=19$m=1024,t=1,p=2$$" + sum,
		"$argon2id$v=19$m=1024,t=1,p=2$" + salt + "$",
		"$argon2id$v=19$m=1024,t=1,p=2$" + salt + "$" + sum[:8],
	}
	for _, enc := range bad {
		if ok, err := VerifyPassword(enc, "pw"); ok || err == nil {
			t.Errorf("malformed hash %q: %v %v", enc, ok, err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	k := testRing(b, "a")
	b.ReportAllocs()
	for b.Loop() {
		k.Lookup("someone.long@example.com")
	}
}

func BenchmarkLookupParallel(b *testing.B) {
	k := testRing(b, "a")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k.Lookup("someone.long@example.com")
		}
	})
}

func BenchmarkNewDataKey(b *testing.B) {
	k := testRing(b, "a")
	b.ReportAllocs()
	for b.Loop() {
		k.NewDataKey()
	}
}

func BenchmarkUnwrapDataKey(b *testing.B) {
	k := testRing(b, "a")
	_, w, _ := k.NewDataKey()
	b.ReportAllocs()
	for b.Loop() {
		k.UnwrapDataKey(w)
	}
}

const field30 = "firstname.lastname@example.org" // 30 bytes

func BenchmarkSealString30(b *testing.B) {
	dk, _, _ := testRing(b, "a").NewDataKey()
	b.ReportAllocs()
	for b.Loop() {
		dk.SealString(field30, "subscriber:42:email")
	}
}

func BenchmarkOpenString30(b *testing.B) {
	dk, _, _ := testRing(b, "a").NewDataKey()
	c := dk.SealString(field30, "subscriber:42:email")
	b.ReportAllocs()
	for b.Loop() {
		dk.OpenString(c, "subscriber:42:email")
	}
}

func BenchmarkSign(b *testing.B) {
	k := testRing(b, "a")
	payload := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		k.Sign("unsubscribe", payload)
	}
}

func BenchmarkVerify(b *testing.B) {
	k := testRing(b, "a")
	tok := k.Sign("unsubscribe", make([]byte, 16))
	b.ReportAllocs()
	for b.Loop() {
		k.Verify("unsubscribe", tok)
	}
}

// BenchmarkHashPassword runs at the production cost: it is the figure for a sign-in.
func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		HashPassword("correct horse battery staple")
	}
}

// TestProcessorCertificate: the certificate carries the receipt key and is the same on
// every call (and so on every node with the same secret).
func TestProcessorCertificate(t *testing.T) {
	k := testRing(t, "p")
	a, err := k.ProcessorCertificate()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.ProcessorCertificate()
	if !bytes.Equal(a, b) {
		t.Fatal("the certificate differs between calls")
	}
	block, _ := pem.Decode(a)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !k.ReceiptKey().Public().(ed25519.PublicKey).Equal(cert.PublicKey) {
		t.Fatal("the certificate does not carry the receipt key")
	}
}

// TestLookupDigest: an address's SHA-256 finds the same person as the address.
func TestLookupDigest(t *testing.T) {
	k := testRing(t, "d")
	addr := "someone@example.com"
	if !bytes.Equal(k.Lookup(addr), k.LookupDigest(sha256.Sum256([]byte(addr)))) {
		t.Fatal("the digest lookup differs from the address lookup")
	}
}
