package tidings

import "context"

// ImportDeclaration is what the importer declares about where the addresses came from.
// It is required, and recorded in the ledger with every imported subscription.
type ImportDeclaration struct {
	Source      string      `json:"source"` // e.g. "sign-up sheet at the 2026 book fair"
	LawfulBasis LawfulBasis `json:"lawful_basis"`
}

// Validate checks the declaration.
func (d ImportDeclaration) Validate() error {
	if err := requireText("source", d.Source, 500); err != nil {
		return err
	}
	if !d.LawfulBasis.Valid() {
		return Invalid("lawful_basis", "invalid_choice",
			"must be one of consent, contract, legal_obligation, vital_interests, public_task, legitimate_interests")
	}
	return nil
}

// ImportRow is one valid row of an import.
type ImportRow struct {
	Row        int // 1-based line in the file, for the report
	Email      Address
	Name       string
	Attributes Attributes
}

// ImportStatus is what happened to one row.
type ImportStatus string

const (
	ImportAdded        ImportStatus = "added"        // new subscription, confirmed under the declaration
	ImportExisting     ImportStatus = "existing"     // already confirmed on the list: unchanged
	ImportSuppressed   ImportStatus = "suppressed"   // unsubscribed, complained or erased: not added
	ImportUnsubscribed ImportStatus = "unsubscribed" // left this list before: not re-added
	ImportInvalid      ImportStatus = "invalid"      // the row was rejected: malformed, or its address refused by the mail server
	ImportDuplicate    ImportStatus = "duplicate"    // the address appeared earlier in the file
	ImportRequested    ImportStatus = "confirmation_sent"
	ImportAwaiting     ImportStatus = "awaiting_confirmation" // asked earlier, the link still works: not asked again
)

// ImportResult reports one row.
type ImportResult struct {
	Row    int          `json:"row"`
	Status ImportStatus `json:"status"`
	Reason string       `json:"reason,omitempty"`
}

// Importer adds confirmed subscriptions in bulk inside one transaction, so an import is
// applied completely or not at all. After an error from Add the import can only be
// rolled back (a failed batch may be partly written). An address comes in one row of
// an import at most. A batch may be written at the next Add or at Commit, whose error
// then ends the import.
type Importer interface {
	// Add imports a batch of valid rows and reports each.
	Add(ctx context.Context, rows []ImportRow) ([]ImportResult, error)
	Commit() error
	Rollback() error
}

// ImportStore starts bulk imports.
type ImportStore interface {
	BeginImport(ctx context.Context, accountID, listID int64, d ImportDeclaration) (Importer, error)
}
