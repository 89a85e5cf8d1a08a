package keys

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters for new hashes. Tests may lower them.
var Argon2Params = struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}{Memory: 64 * 1024, Time: 3, Threads: 2}

// MaxPasswordBytes bounds the work an attacker can make us do per attempt.
const MaxPasswordBytes = 1024

var errMalformedHash = errors.New("keys: malformed password hash")

// HashPassword hashes pw with argon2id into a PHC string:
// $argon2id$v=19$m=65536,t=3,p=2$salt$hash
func HashPassword(pw string) (string, error) {
	if len(pw) > MaxPasswordBytes {
		return "", fmt.Errorf("keys: password longer than %d bytes", MaxPasswordBytes)
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	p := Argon2Params
	sum := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

// VerifyPassword reports whether pw matches encoded, in constant time. An error means
// encoded is not an argon2id hash this package can check, not that pw is wrong.
func VerifyPassword(encoded, pw string) (bool, error) {
	m, t, p, salt, want, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	if len(pw) > MaxPasswordBytes {
		return false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// parsePHC parses $argon2id$v=19$m=…,t=…,p=…$salt$hash strictly. The bounds are far above
// any sane setting; they stop a corrupted row from making us allocate gigabytes.
func parsePHC(encoded string) (m, t uint32, p uint8, salt, sum []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return 0, 0, 0, nil, nil, errMalformedHash
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return 0, 0, 0, nil, nil, errMalformedHash
	}
	mv, err1 := param(params[0], "m=", 1<<20) // 1 GiB
	tv, err2 := param(params[1], "t=", 100)
	pv, err3 := param(params[2], "p=", 255)
	enc := base64.RawStdEncoding.Strict()
	salt, err4 := enc.DecodeString(parts[4])
	sum, err5 := enc.DecodeString(parts[5])
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil ||
		len(salt) < 8 || len(salt) > 64 || len(sum) < 16 || len(sum) > 64 {
		return 0, 0, 0, nil, nil, errMalformedHash
	}
	return uint32(mv), uint32(tv), uint8(pv), salt, sum, nil
}

func param(s, name string, max uint64) (uint64, error) {
	v, ok := strings.CutPrefix(s, name)
	if !ok {
		return 0, errMalformedHash
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 || n > max {
		return 0, errMalformedHash
	}
	return n, nil
}
