package consent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/tidings/tidings/internal/tidings"
)

// LedgerReport is the outcome of verifying one account's ledger.
type LedgerReport struct {
	AccountID int64
	Entries   int64
	OK        bool
	BrokenAt  int64  // the first entry that fails, when not OK
	Problem   string // what is wrong with it
}

// LedgerReader is what verification reads.
type LedgerReader interface {
	LedgerEntries(ctx context.Context, accountID, afterSeq int64, limit int) ([]tidings.LedgerEntry, error)
	LedgerHead(ctx context.Context, accountID int64) (int64, []byte, error)
	ConsentText(ctx context.Context, accountID int64, version int) (tidings.ConsentText, error)
}

// VerifyLedger recomputes an account's chain from the first entry and reports the first
// broken link: a missing or reordered entry, an altered field (the hash no longer
// matches), altered evidence (its digest no longer matches), or a head that does not
// point at the last entry (entries cut off the end). An entry that names a consent text
// (text_version > 0; imports name none) is checked against that text as stored today:
// a text whose body no longer hashes to its stored SHA-256, or to the entry's
// text_sha256, or that is gone, breaks the entry.
func VerifyLedger(ctx context.Context, store LedgerReader, accountID int64) (LedgerReport, error) {
	rep := LedgerReport{AccountID: accountID}
	prev := make([]byte, sha256.Size)
	var last int64
	broken := func(seq int64, format string, args ...any) (LedgerReport, error) {
		rep.BrokenAt, rep.Problem = seq, fmt.Sprintf(format, args...)
		return rep, nil
	}
	// The account's texts by version, each read once: SHA-256 of its body, or nil with
	// what is wrong with it.
	type textState struct {
		sum     []byte
		problem string
	}
	texts := map[int]textState{}
	textOf := func(version int) (textState, error) {
		if st, ok := texts[version]; ok {
			return st, nil
		}
		var st textState
		t, err := store.ConsentText(ctx, accountID, version)
		switch {
		case errors.Is(err, tidings.ErrConsentTextAltered):
			st.problem = "was altered: its body no longer matches its stored SHA-256"
		case errors.Is(err, tidings.ErrNotFound):
			st.problem = "is missing"
		case err != nil:
			return st, err
		default:
			sum := sha256.Sum256([]byte(t.Body))
			st.sum = sum[:]
		}
		texts[version] = st
		return st, nil
	}
	for {
		batch, err := store.LedgerEntries(ctx, accountID, last, 5000)
		if err != nil {
			return rep, err
		}
		for _, e := range batch {
			switch {
			case e.Seq != last+1:
				return broken(last+1, "entry %d is missing (next entry is %d)", last+1, e.Seq)
			case !bytes.Equal(e.PrevHash, prev):
				return broken(e.Seq, "entry %d does not link to entry %d", e.Seq, last)
			case !bytes.Equal(e.ComputeHash(), e.Hash):
				return broken(e.Seq, "entry %d was altered: its contents no longer match its hash", e.Seq)
			}
			ev := e.EvidenceSealed
			if ev == nil {
				ev = e.SharedEvidence
			}
			if ev != nil {
				if sum := sha256.Sum256(ev); !bytes.Equal(sum[:], e.EvidenceSHA256) {
					return broken(e.Seq, "the evidence of entry %d was altered", e.Seq)
				}
			}
			if e.TextVersion > 0 {
				st, err := textOf(e.TextVersion)
				if err != nil {
					return rep, err
				}
				switch {
				case st.problem != "":
					return broken(e.Seq, "the consent text of entry %d (version %d) %s", e.Seq, e.TextVersion, st.problem)
				case !bytes.Equal(st.sum, e.TextSHA256):
					return broken(e.Seq, "the consent text of entry %d (version %d) was altered: its body no longer matches the SHA-256 the entry recorded", e.Seq, e.TextVersion)
				}
			}
			prev, last = e.Hash, e.Seq
			rep.Entries++
		}
		if len(batch) < 5000 {
			break
		}
	}
	headSeq, headHash, err := store.LedgerHead(ctx, accountID)
	switch {
	case errors.Is(err, tidings.ErrNotFound) && last > 0:
		return broken(last, "the ledger has %d entries but no head: its head was removed", last)
	case errors.Is(err, tidings.ErrNotFound):
	case err != nil:
		return rep, err
	case headSeq != last || (last > 0 && !bytes.Equal(headHash, prev)):
		return broken(last+1, "the ledger ends at entry %d but its head says %d: entries were removed from the end", last, headSeq)
	}
	rep.OK = true
	return rep, nil
}
