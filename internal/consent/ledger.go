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
}

// VerifyLedger recomputes an account's chain from the first entry and reports the first
// broken link: a missing or reordered entry, an altered field (the hash no longer
// matches), altered evidence (its digest no longer matches), or a head that does not
// point at the last entry (entries cut off the end).
func VerifyLedger(ctx context.Context, store LedgerReader, accountID int64) (LedgerReport, error) {
	rep := LedgerReport{AccountID: accountID}
	prev := make([]byte, sha256.Size)
	var last int64
	broken := func(seq int64, format string, args ...any) (LedgerReport, error) {
		rep.BrokenAt, rep.Problem = seq, fmt.Sprintf(format, args...)
		return rep, nil
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
			if e.EvidenceSealed != nil {
				if sum := sha256.Sum256(e.EvidenceSealed); !bytes.Equal(sum[:], e.EvidenceSHA256) {
					return broken(e.Seq, "the evidence of entry %d was altered", e.Seq)
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
