//go:build !(linux && (amd64 || arm64)) || nolibcrypto

package mail

import "errors"

// Without purego's support (or with -tags nolibcrypto, for a fully static binary) RSA
// keys sign with crypto/rsa.
func loadLibcrypto(string) (rsaEngine, error) {
	return nil, errors.New("built without libcrypto")
}
