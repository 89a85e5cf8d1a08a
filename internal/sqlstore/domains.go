package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"

	"github.com/tidings/tidings/internal/tidings"
)

var selectorRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func dkimAAD(domainID int64, selector string) []byte {
	return []byte(fmt.Sprintf("tidings/v1 dkim domain=%d selector=%s", domainID, selector))
}

func (s *Store) AddDKIMKey(ctx context.Context, accountID int64, domain string, k *tidings.DKIMKey) error {
	return s.AddDKIMKeys(ctx, accountID, domain, k)
}

// AddDKIMKeys adds keys to the account's domain, creating the domain if new, in one
// transaction: every key is checked first, and either all are stored or none (a selector
// already used on the domain is ErrConflict, and leaves the others unstored too).
func (s *Store) AddDKIMKeys(ctx context.Context, accountID int64, domain string, ks ...*tidings.DKIMKey) error {
	domain, err := tidings.ParseDomain(domain)
	if err != nil {
		return err
	}
	if len(ks) == 0 {
		return tidings.Invalid("algorithm", "required", "at least one key is needed")
	}
	seen := map[string]bool{}
	for _, k := range ks {
		k.Selector = strings.ToLower(strings.TrimSpace(k.Selector))
		if !selectorRE.MatchString(k.Selector) {
			return tidings.Invalid("selector", "bad_selector", "must be a DNS label: letters, digits and hyphens")
		}
		if seen[k.Selector] {
			return tidings.Invalid("selector", "duplicate", "%s is given twice", k.Selector)
		}
		seen[k.Selector] = true
		if k.Algorithm != "rsa" && k.Algorithm != "ed25519" {
			return tidings.Invalid("algorithm", "invalid_choice", "must be rsa or ed25519")
		}
	}
	now := s.stamp()
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = $1`, accountID).Scan(new(int)); err != nil {
			return translate(err)
		}
		// A domain belongs to at most one account on the instance (migration 31): its
		// keys sign as it, and the account sees the mail sent from it. The conflict target
		// is the domain alone, so a concurrent claim by another account is found by the
		// SELECT below rather than failing the insert; which account holds it is not said.
		if _, err := tx.ExecContext(ctx, `INSERT INTO sending_domains (account_id, domain, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (domain) DO NOTHING`, accountID, domain, toDB(now)); err != nil {
			return translate(err)
		}
		var domainID, owner int64
		if err := tx.QueryRowContext(ctx, `SELECT id, account_id FROM sending_domains WHERE domain = $1`, domain).Scan(&domainID, &owner); err != nil {
			return err
		}
		if owner != accountID {
			return tidings.Invalid("domain", "domain_taken", "this domain is already used by another account on this instance; ask the operator")
		}
		for _, k := range ks {
			sealed := s.keys.SealInstance(k.PrivateKey, dkimAAD(domainID, k.Selector))
			if err := tx.QueryRowContext(ctx, `
				INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key_sealed, public_key, created_at)
				VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, domainID, k.Selector, k.Algorithm, sealed, k.PublicKey, toDB(now)).Scan(&k.ID); err != nil {
				return translate(err)
			}
		}
		return nil
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

func (s *Store) RetireDKIMKey(ctx context.Context, accountID, keyID int64) error {
	return rowsAffected(s.w.ExecContext(ctx, `
		UPDATE dkim_keys SET retired_at = $3 WHERE id = $2 AND retired_at IS NULL
		AND domain_id IN (SELECT id FROM sending_domains WHERE account_id = $1)`, accountID, keyID, toDB(s.stamp())))
}

func (s *Store) SendingDomains(ctx context.Context, accountID int64) ([]tidings.SendingDomain, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT d.id, d.domain, d.created_at, k.id, k.selector, k.algorithm, k.private_key_sealed, k.public_key, k.created_at, k.retired_at
		FROM sending_domains d LEFT JOIN dkim_keys k ON k.domain_id = d.id
		WHERE d.account_id = $1 ORDER BY d.id, k.id`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tidings.SendingDomain
	for rows.Next() {
		var d tidings.SendingDomain
		var created int64
		var kid, kcreated, retired sql.NullInt64
		var sel, alg sql.NullString
		var sealed, pub []byte
		if err := rows.Scan(&d.ID, &d.Domain, &created, &kid, &sel, &alg, &sealed, &pub, &kcreated, &retired); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].ID != d.ID {
			d.AccountID, d.CreatedAt, d.Keys = accountID, fromDB(created), []tidings.DKIMKey{}
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

// ValidSelector reports whether s is a DKIM selector AddDKIMKeys accepts: one lower-case
// DNS label.
func ValidSelector(s string) bool { return selectorRE.MatchString(s) }
