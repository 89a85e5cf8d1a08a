//go:build !cgo || !(linux && (amd64 || arm64)) || nolibcrypto

package mail

import "errors"

// In static (CGO_ENABLED=0) builds, where purego is not supported, and with
// -tags nolibcrypto, RSA keys sign with crypto/rsa.
func loadLibcrypto(string) (rsaEngine, error) {
	return nil, errors.New("built without libcrypto")
}
