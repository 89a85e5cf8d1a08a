package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/pressly/goose/v3"
)

// rehashMigration is the Go migration that recomputes persons' lookup hashes after
// keys.Lookup became HMAC over the SHA-256 of the address (so that OpenDSR's sha256
// identities can be matched). It sits after the SQL migrations of the same release.
const rehashMigration = 23

func (s *Store) goMigrations() goose.ProviderOption {
	return goose.WithGoMigrations(goose.NewGoMigration(rehashMigration,
		&goose.GoFunc{RunTx: s.rehashPersons},
		&goose.GoFunc{RunTx: func(context.Context, *sql.Tx) error {
			return errors.New("migration 23 (lookup hashes over SHA-256) cannot be undone")
		}}))
}

// rehashPersons gives every person the lookup hash of today's keys.Lookup, computed from
// their address as sealed in one of their subscriber rows. People who are nobody's
// subscriber (left by deleted accounts) hold no data and have no address: they go. Sign-in
// links and portal sessions, found by the old hash, end. The DSAR log keeps the hashes it
// was written with: they are a record, never looked up.
func (s *Store) rehashPersons(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM persons WHERE NOT EXISTS (SELECT 1 FROM subscribers x WHERE x.person_id = persons.id)`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM portal_tokens`); err != nil {
		return err
	}
	// In chunks by ID: the loop updates the table it reads.
	type person struct {
		id, account int64
		wrapped     []byte
		emailEnc    []byte
	}
	for after := int64(0); ; {
		rows, err := tx.QueryContext(ctx, `SELECT p.id, x.account_id, k.wrapped_key, x.email_enc
			FROM persons p JOIN person_keys k ON k.id = p.key_id
			JOIN subscribers x ON x.id = (SELECT MIN(id) FROM subscribers WHERE person_id = p.id)
			WHERE p.id > $1 ORDER BY p.id LIMIT 1000`, after)
		if err != nil {
			return err
		}
		var chunk []person
		for rows.Next() {
			var p person
			if err := rows.Scan(&p.id, &p.account, &p.wrapped, &p.emailEnc); err != nil {
				rows.Close()
				return err
			}
			chunk = append(chunk, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(chunk) == 0 {
			return nil
		}
		for _, p := range chunk {
			dk, err := s.keys.UnwrapDataKey(p.wrapped)
			if err != nil {
				return fmt.Errorf("person %d: %w", p.id, err)
			}
			email, err := dk.OpenString(p.emailEnc, aad(p.account, p.id, "email"))
			if err != nil {
				return fmt.Errorf("person %d: %w", p.id, err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE persons SET email_hash = $1 WHERE id = $2`, s.keys.Lookup(email), p.id); err != nil {
				return err
			}
		}
		after = chunk[len(chunk)-1].id
	}
}
