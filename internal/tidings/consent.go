package tidings

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// ConsentText is one version of the consent wording an account shows on its forms. The
// version and the SHA-256 of the exact text are recorded with every consent.
type ConsentText struct {
	AccountID int64     `json:"account_id"`
	Version   int       `json:"version"`
	Body      string    `json:"body"`
	SHA256    []byte    `json:"sha256"`
	CreatedAt time.Time `json:"created_at"`
}

// Source says through which door a consent event came.
type Source string

const (
	SourceForm   Source = "form"
	SourceAPI    Source = "api"
	SourceImport Source = "import"
	SourcePortal Source = "portal"
	SourceAdmin  Source = "admin"
	SourceMail   Source = "mail" // a link in a mail (confirm, unsubscribe)
)

// Evidence is what Tidings records about the request behind a consent event. It is
// personal data: stores seal it under the person's data key.
type Evidence struct {
	Time      time.Time `json:"time"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	Referrer  string    `json:"referrer,omitempty"`
	Note      string    `json:"note,omitempty"` // e.g. an import's declared source and lawful basis
}

// LedgerKind names a consent ledger event.
type LedgerKind string

const (
	LedgerRequested      LedgerKind = "requested"       // double opt-in asked; confirmation mail sent
	LedgerConfirmed      LedgerKind = "confirmed"       // the person clicked the confirmation link
	LedgerSingleOptIn    LedgerKind = "single_opt_in"   // list without double opt-in: recorded as such
	LedgerDeclined       LedgerKind = "declined"        // "this wasn't me"
	LedgerImported       LedgerKind = "imported"        // added by import under a declared basis
	LedgerUnsubscribed   LedgerKind = "unsubscribed"    // consent withdrawn
	LedgerTrackingChange LedgerKind = "tracking_change" // tracking consent given or withdrawn
	LedgerExpired        LedgerKind = "expired"         // unconfirmed request deleted after 7 days
	LedgerUnsent         LedgerKind = "unsent"          // request withdrawn: its confirmation mail could not be sent
)

// LedgerEntry is one link of an account's append-only, hash-chained consent ledger.
// The hash covers every column, the evidence only through its digest: erasing a person
// deletes the evidence ciphertext but leaves the chain verifiable. Evidence that many
// entries share and that is about none of their people (an import's declaration) is
// stored once, in the clear, and not sealed per entry.
type LedgerEntry struct {
	AccountID      int64      `json:"account_id"`
	Seq            int64      `json:"seq"`
	Time           time.Time  `json:"time"`
	Kind           LedgerKind `json:"kind"`
	PersonID       int64      `json:"person_id"`
	ListID         int64      `json:"list_id"`
	Source         Source     `json:"source"`
	TextVersion    int        `json:"text_version"`
	TextSHA256     []byte     `json:"text_sha256,omitempty"`
	EvidenceSHA256 []byte     `json:"evidence_sha256"`
	EvidenceSealed []byte     `json:"-"` // nil after erasure, or when the evidence is shared
	SharedEvidence []byte     `json:"-"` // the shared evidence, whose digest is EvidenceSHA256; or nil
	PrevHash       []byte     `json:"prev_hash"`
	Hash           []byte     `json:"hash"`
}

// ComputeHash returns SHA-256 over the previous hash and every field of the entry, each
// length-prefixed so that no two different entries encode alike.
func (e *LedgerEntry) ComputeHash() []byte {
	h := sha256.New()
	var n [8]byte
	num := func(v int64) { binary.BigEndian.PutUint64(n[:], uint64(v)); h.Write(n[:]) }
	bytes := func(b []byte) { num(int64(len(b))); h.Write(b) }
	bytes([]byte("tidings-ledger-v1"))
	bytes(e.PrevHash)
	num(e.AccountID)
	num(e.Seq)
	num(e.Time.UnixMicro())
	bytes([]byte(e.Kind))
	num(e.PersonID)
	num(e.ListID)
	bytes([]byte(e.Source))
	num(int64(e.TextVersion))
	bytes(e.TextSHA256)
	bytes(e.EvidenceSHA256)
	return h.Sum(nil)
}

// SuppressionReason says why an address may not be (re-)added.
type SuppressionReason string

const (
	SuppressUnsubscribed SuppressionReason = "unsubscribed"
	SuppressComplaint    SuppressionReason = "complaint"
	SuppressErasure      SuppressionReason = "erasure"
	SuppressObjection    SuppressionReason = "objection"
	SuppressBounce       SuppressionReason = "bounce"
)

// InstanceWide is the account ID of suppressions that hold for every account
// (complaints).
const InstanceWide int64 = 0
