package consent

import (
	"encoding/binary"
)

// ListToken is the public, unguessable name of a list in subscribe URLs (/s/{token}):
// numeric IDs would let anyone enumerate every account's lists.
func (s *Service) ListToken(accountID, listID int64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:], uint64(accountID))
	binary.BigEndian.PutUint64(b[8:], uint64(listID))
	return s.Keys.Sign("list", b[:])
}

// ParseListToken reverses ListToken; ok is false for forged or altered tokens.
func (s *Service) ParseListToken(token string) (accountID, listID int64, ok bool) {
	p, err := s.Keys.Verify("list", token)
	if err != nil || len(p) != 16 {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(p[0:])), int64(binary.BigEndian.Uint64(p[8:])), true
}

// SubscribeURL is the hosted subscribe page of a list, offering the further lists given
// as unticked checkboxes (AlsoQuery).
func (s *Service) SubscribeURL(accountID, listID int64, also ...AlsoList) string {
	return s.BaseURL + "/s/" + s.ListToken(accountID, listID) + AlsoQuery(also)
}
