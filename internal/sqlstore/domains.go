package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

func dkimAAD(domainID int64, selector string) []byte {
	return []byte(fmt.Sprintf("tidings/v1 dkim domain=%d selector=%s", domainID, selector))
}

func (s *Store) AddDKIMKey(ctx context.Context, accountID int64, domain string, k *tidings.DKIMKey) error {
	return s.AddDKIMKeys(ctx, accountID, domain, k)
}

// AddDKIMKeys adds keys to the account's domain, creating the domain if new (or making
// a domain the account removed its own again), in one transaction: every key is checked
// first, and either all are stored or none (a selector used on the domain before, by
// any key of any account, is ErrConflict with tidings.SelectorTaken, and leaves the
// others unstored too).
func (s *Store) AddDKIMKeys(ctx context.Context, accountID int64, domain string, ks ...*tidings.DKIMKey) error {
	domain, err := checkKeys(domain, ks)
	if err != nil {
		return err
	}
	now := s.stamp()
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = $1`, accountID).Scan(new(int)); err != nil {
			return translate(err)
		}
		return s.claimDomain(ctx, tx, accountID, domain, ks, now)
	})
	if err != nil {
		for _, k := range ks {
			k.ID = 0
		}
		return err
	}
	for _, k := range ks {
		k.CreatedAt = now
	}
	return nil
}

// checkKeys validates a generation of keys for domain before anything is stored, and
// returns the domain normalised.
func checkKeys(domain string, ks []*tidings.DKIMKey) (string, error) {
	domain, err := tidings.ParseDomain(domain)
	if err != nil {
		return "", err
	}
	if len(ks) == 0 {
		return "", tidings.Invalid("algorithm", "required", "at least one key is needed")
	}
	seen := map[string]bool{}
	for _, k := range ks {
		k.Selector = strings.ToLower(strings.TrimSpace(k.Selector))
		if !tidings.ValidSelector(k.Selector) {
			return "", tidings.Invalid("selector", "bad_selector", "must be a DNS label: letters, digits and hyphens")
		}
		if seen[k.Selector] {
			return "", tidings.Invalid("selector", "duplicate", "%s is given twice", k.Selector)
		}
		seen[k.Selector] = true
		if k.Algorithm != "rsa" && k.Algorithm != "ed25519" {
			return "", tidings.Invalid("algorithm", "invalid_choice", "must be rsa or ed25519")
		}
	}
	return domain, nil
}

// claimDomain makes domain the account's sending domain, if no other account sends from
// it, and stores the keys on it. A domain belongs to at most one account on the
// instance while in use (migrations 31 and 33): its keys sign as it. The claim is an
// insert that does nothing on a conflict, so a concurrent claim by another account is
// found by the SELECT after it rather than failing; which account holds it is not said.
func (s *Store) claimDomain(ctx context.Context, tx *sql.Tx, accountID int64, domain string, ks []*tidings.DKIMKey, now time.Time) error {
	taken := tidings.Invalid("domain", "domain_taken", "this domain is already used by another account on this instance; ask the operator")
	if _, err := tx.ExecContext(ctx, `INSERT INTO sending_domains (account_id, domain, created_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, accountID, domain, toDB(now)); err != nil {
		return translate(err)
	}
	// Locked, so that a removal of the domain meanwhile (which retires its keys) comes
	// before or after the keys added here, never between.
	var domainID, owner int64
	err := tx.QueryRowContext(ctx, `SELECT id, account_id FROM sending_domains WHERE domain = $1 AND removed_at IS NULL`+s.engine.forUpdate(),
		domain).Scan(&domainID, &owner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// Nobody sends from it, and the insert did nothing: the account removed it once.
		// Its row (and old keys, retired) is its own again.
		err = tx.QueryRowContext(ctx, `UPDATE sending_domains SET removed_at = NULL
			WHERE account_id = $1 AND domain = $2 AND removed_at IS NOT NULL RETURNING id`, accountID, domain).Scan(&domainID)
		if errors.Is(err, sql.ErrNoRows) || errors.Is(translate(err), tidings.ErrConflict) {
			return taken // another account held it, or claimed it meanwhile
		}
		if err != nil {
			return translate(err)
		}
	case err != nil:
		return err
	case owner != accountID:
		return taken
	}
	for _, k := range ks {
		// A domain and a selector name one public key for good, whichever account's and
		// whether retired or removed: the rule of tidings.DKIMSelectors.
		var used int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM dkim_keys k JOIN sending_domains d ON d.id = k.domain_id
			WHERE d.domain = $1 AND k.selector = $2`, domain, k.Selector).Scan(&used)
		if err == nil {
			return selectorTaken(k.Selector, domain)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		sealed := s.keys.SealInstance(k.PrivateKey, dkimAAD(domainID, k.Selector))
		if err := tx.QueryRowContext(ctx, `
			INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key_sealed, public_key, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, domainID, k.Selector, k.Algorithm, sealed, k.PublicKey, toDB(now)).Scan(&k.ID); err != nil {
			if errors.Is(translate(err), tidings.ErrConflict) {
				return selectorTaken(k.Selector, domain) // added meanwhile
			}
			return translate(err)
		}
	}
	return nil
}

// selectorTaken is both ErrConflict, as the store's unique constraints are, and the
// rule's own words (tidings.SelectorTaken) for the forms.
func selectorTaken(selector, domain string) error {
	return fmt.Errorf("%w: %w", tidings.ErrConflict, tidings.SelectorTaken(selector, domain))
}

// RemoveSendingDomain retires the domain's keys and marks it removed; see
// tidings.DomainStore.
func (s *Store) RemoveSendingDomain(ctx context.Context, accountID, domainID int64) error {
	now := s.stamp()
	return s.tx(ctx, func(tx *sql.Tx) error {
		var domain string
		if err := tx.QueryRowContext(ctx, `SELECT domain FROM sending_domains WHERE id = $1 AND account_id = $2 AND removed_at IS NULL`+s.engine.forUpdate(),
			domainID, accountID).Scan(&domain); err != nil {
			return translate(err)
		}
		return s.retireDomain(ctx, tx, accountID, domainID, domain, now)
	})
}

// MoveSendingDomain gives the domain to another account with new keys; see
// tidings.DomainStore.
func (s *Store) MoveSendingDomain(ctx context.Context, domain string, toAccountID int64, ks ...*tidings.DKIMKey) (int64, error) {
	domain, err := checkKeys(domain, ks)
	if err != nil {
		return 0, err
	}
	now := s.stamp()
	var from int64
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = $1`+s.engine.forShare(), toAccountID).Scan(new(int)); err != nil {
			return translate(err)
		}
		var domainID int64
		err := tx.QueryRowContext(ctx, `SELECT id, account_id FROM sending_domains WHERE domain = $1 AND removed_at IS NULL`+s.engine.forUpdate(),
			domain).Scan(&domainID, &from)
		if errors.Is(err, sql.ErrNoRows) {
			return tidings.Invalid("domain", "unknown_domain", "%s is not a sending domain of any account on this instance", domain)
		}
		if err != nil {
			return err
		}
		if from == toAccountID {
			return tidings.Invalid("account", "same_account", "%s is already a sending domain of account %d", domain, toAccountID)
		}
		if err := s.retireDomain(ctx, tx, from, domainID, domain, now); err != nil {
			return err
		}
		return s.claimDomain(ctx, tx, toAccountID, domain, ks, now)
	})
	if err != nil {
		for _, k := range ks {
			k.ID = 0
		}
		return 0, err
	}
	for _, k := range ks {
		k.CreatedAt = now
	}
	return from, nil
}

// retireDomain marks the account's domain removed and retires its keys, unless a
// campaign not yet sent or cancelled sends from it: it would go out unsigned, from a
// domain the account no longer holds (perhaps another account's by then). Drafts count
// too: moving one to sending does not check its From domain again. The caller has
// locked the domain's row FOR UPDATE: a campaign being written to send from it holds
// the row (checkFromDomain) and is seen here once it commits, or waits and then finds
// the domain removed.
func (s *Store) retireDomain(ctx context.Context, tx *sql.Tx, accountID, domainID int64, domain string, now time.Time) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, name, status, from_address FROM campaigns
		WHERE account_id = $1 AND status IN ('draft', 'scheduled', 'sending', 'paused') ORDER BY id`, accountID)
	if err != nil {
		return err
	}
	var inUse []string
	for rows.Next() {
		var id int64
		var name, status, from string
		if err := rows.Scan(&id, &name, &status, &from); err != nil {
			rows.Close()
			return err
		}
		if a, err := tidings.ParseAddress(from); err == nil && a.Domain == domain {
			inUse = append(inUse, fmt.Sprintf("%q (%d, %s)", name, id, status))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(inUse) > 0 {
		return tidings.Invalid("domain", "domain_in_use", "%s is the From domain of campaign %s; change its From address, delete or cancel it, or wait until it is sent, first",
			domain, strings.Join(inUse, ", "))
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sending_domains SET removed_at = $2 WHERE id = $1`, domainID, toDB(now)); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE dkim_keys SET retired_at = $2 WHERE domain_id = $1 AND retired_at IS NULL`, domainID, toDB(now))
	return err
}

func (s *Store) RetireDKIMKey(ctx context.Context, accountID, keyID int64) error {
	return rowsAffected(s.w.ExecContext(ctx, `
		UPDATE dkim_keys SET retired_at = $3 WHERE id = $2 AND retired_at IS NULL
		AND domain_id IN (SELECT id FROM sending_domains WHERE account_id = $1)`, accountID, keyID, toDB(s.stamp())))
}

func (s *Store) SendingDomains(ctx context.Context, accountID int64) ([]tidings.SendingDomain, error) {
	return s.sendingDomains(ctx, accountID, false)
}

func (s *Store) RemovedSendingDomains(ctx context.Context, accountID int64) ([]tidings.SendingDomain, error) {
	return s.sendingDomains(ctx, accountID, true)
}

func (s *Store) sendingDomains(ctx context.Context, accountID int64, removed bool) ([]tidings.SendingDomain, error) {
	which := `d.removed_at IS NULL`
	if removed {
		which = `d.removed_at IS NOT NULL`
	}
	rows, err := s.r.QueryContext(ctx, `
		SELECT d.id, d.domain, d.created_at, d.removed_at, k.id, k.selector, k.algorithm, k.private_key_sealed, k.public_key, k.created_at, k.retired_at
		FROM sending_domains d LEFT JOIN dkim_keys k ON k.domain_id = d.id
		WHERE d.account_id = $1 AND `+which+` ORDER BY d.id, k.id`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tidings.SendingDomain
	for rows.Next() {
		var d tidings.SendingDomain
		var created int64
		var kid, kcreated, retired, removedAt sql.NullInt64
		var sel, alg sql.NullString
		var sealed, pub []byte
		if err := rows.Scan(&d.ID, &d.Domain, &created, &removedAt, &kid, &sel, &alg, &sealed, &pub, &kcreated, &retired); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].ID != d.ID {
			d.AccountID, d.CreatedAt, d.RemovedAt, d.Keys = accountID, fromDB(created), fromDBPtr(removedAt), []tidings.DKIMKey{}
			out = append(out, d)
		}
		if !kid.Valid {
			continue
		}
		priv, err := s.keys.OpenInstance(sealed, dkimAAD(d.ID, sel.String))
		if err != nil {
			return nil, fmt.Errorf("dkim key %d: %w", kid.Int64, err)
		}
		last := &out[len(out)-1]
		last.Keys = append(last.Keys, tidings.DKIMKey{ID: kid.Int64, Selector: sel.String, Algorithm: alg.String, PrivateKey: priv,
			PublicKey: pub, CreatedAt: fromDB(kcreated.Int64), RetiredAt: fromDBPtr(retired)})
	}
	return out, rows.Err()
}
