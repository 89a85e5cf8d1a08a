package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidings/tidings/internal/tidings"
)

// The login side of users: security state, sessions, login log, resets, recovery codes.

func (s *Store) UserSecurity(ctx context.Context, userID int64) (tidings.UserSecurity, error) {
	var u tidings.UserSecurity
	var locked, changed int64
	err := s.r.QueryRowContext(ctx, `
		SELECT totp_secret, totp_enabled, failed_logins, locked_until, password_changed_at FROM users WHERE id = $1`,
		userID).Scan(&u.TOTPSecret, &u.TOTPEnabled, &u.FailedLogins, &locked, &changed)
	if locked > 0 {
		u.LockedUntil = fromDB(locked)
	}
	if changed > 0 {
		u.PasswordChangedAt = fromDB(changed)
	}
	return u, translate(err)
}

func (s *Store) RecordLogin(ctx context.Context, a tidings.LoginAttempt, lockAfter int, lockUntil time.Time) error {
	// The user agent is the client's to choose: keep a bounded, storable version of it.
	if len(a.UserAgent) > 1000 || strings.ContainsRune(a.UserAgent, 0) || !utf8.ValidString(a.UserAgent) {
		a.UserAgent = "(unreadable)"
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		user := sql.NullInt64{Int64: a.UserID, Valid: a.UserID != 0}
		if _, err := tx.ExecContext(ctx, `INSERT INTO login_attempts (user_id, ip, user_agent, result, at) VALUES ($1, $2, $3, $4, $5)`,
			user, a.IP, a.UserAgent, string(a.Result), toDB(a.At)); err != nil {
			return translate(err)
		}
		if a.UserID == 0 {
			return nil
		}
		var err error
		switch a.Result {
		case tidings.LoginOK, tidings.LoginRecoveryCode:
			_, err = tx.ExecContext(ctx, `UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = $1`, a.UserID)
		case tidings.LoginBadPassword, tidings.LoginBadTOTP:
			// The lock starts at the lockAfter-th failure in a row.
			_, err = tx.ExecContext(ctx, `
				UPDATE users SET failed_logins = failed_logins + 1,
					locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END
				WHERE id = $1`, a.UserID, lockAfter, toDB(lockUntil))
		}
		return translate(err)
	})
}

func (s *Store) LoginAttempts(ctx context.Context, userID int64, p tidings.Page) ([]tidings.LoginAttempt, error) {
	p = p.Clamp()
	before := p.After // newest first: the page continues below this ID
	if before == 0 {
		before = 1 << 62
	}
	q := `SELECT id, COALESCE(user_id, 0), ip, user_agent, result, at FROM login_attempts WHERE id < $1 AND ($2 = 0 OR user_id = $2) ORDER BY id DESC LIMIT $3`
	rows, err := s.r.QueryContext(ctx, q, before, userID, p.Limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (tidings.LoginAttempt, error) {
		var a tidings.LoginAttempt
		var at int64
		err := r.Scan(&a.ID, &a.UserID, &a.IP, &a.UserAgent, &a.Result, &at)
		a.At = fromDB(at)
		return a, err
	})
}

func (s *Store) PruneLoginAttempts(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM login_attempts WHERE at < $1`, toDB(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s *Store) SetPassword(ctx context.Context, userID int64, hash string) error {
	if hash == "" {
		return tidings.Invalid("password", "required", "is required")
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := rowsAffected(tx.ExecContext(ctx, `
			UPDATE users SET password_hash = $2, password_changed_at = $3, failed_logins = 0, locked_until = 0 WHERE id = $1`,
			userID, hash, toDB(s.stamp()))); err != nil {
			return err
		}
		// A new password ends every session, including any a thief holds.
		_, err := tx.ExecContext(ctx, `DELETE FROM staff_sessions WHERE user_id = $1`, userID)
		return err
	})
}

func (s *Store) UpdateUserName(ctx context.Context, userID int64, name string) error {
	name = strings.TrimSpace(name)
	if len(name) > 200 {
		return tidings.Invalid("name", "too_long", "must be at most 200 bytes")
	}
	return rowsAffected(s.w.ExecContext(ctx, `UPDATE users SET name = $2 WHERE id = $1`, userID, name))
}

func (s *Store) SetTOTP(ctx context.Context, userID int64, sealedSecret []byte, enabled bool, recoveryHashes [][]byte) error {
	if sealedSecret == nil {
		enabled, recoveryHashes = false, nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := rowsAffected(tx.ExecContext(ctx, `UPDATE users SET totp_secret = $2, totp_enabled = $3 WHERE id = $1`,
			userID, sealedSecret, enabled)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		for _, h := range recoveryHashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)`, userID, h); err != nil {
				return translate(err)
			}
		}
		return nil
	})
}

func (s *Store) UseTOTPStep(ctx context.Context, userID, step int64) error {
	return rowsAffected(s.w.ExecContext(ctx, `UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2`, userID, step))
}

func (s *Store) UseRecoveryCode(ctx context.Context, userID int64, hash []byte) error {
	return rowsAffected(s.w.ExecContext(ctx, `UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`,
		userID, hash, toDB(s.stamp())))
}

func (s *Store) RecoveryCodesLeft(ctx context.Context, userID int64) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL`, userID).Scan(&n)
	return n, err
}

func (s *Store) CreateStaffSession(ctx context.Context, hash []byte, ss tidings.StaffSession) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO staff_sessions (token_hash, user_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $3, $4)`,
		hash, ss.UserID, toDB(ss.CreatedAt), toDB(ss.ExpiresAt))
	return translate(err)
}

func (s *Store) StaffSession(ctx context.Context, hash []byte, now, idleSince time.Time) (tidings.StaffSession, error) {
	var ss tidings.StaffSession
	var created, seen, expires int64
	err := s.r.QueryRowContext(ctx, `SELECT user_id, created_at, last_seen_at, expires_at FROM staff_sessions WHERE token_hash = $1`, hash).
		Scan(&ss.UserID, &created, &seen, &expires)
	if err != nil {
		return ss, translate(err)
	}
	ss.CreatedAt, ss.LastSeenAt, ss.ExpiresAt = fromDB(created), fromDB(seen), fromDB(expires)
	if !now.Before(ss.ExpiresAt) || ss.LastSeenAt.Before(idleSince) {
		s.w.ExecContext(ctx, `DELETE FROM staff_sessions WHERE token_hash = $1`, hash)
		return tidings.StaffSession{}, tidings.ErrNotFound
	}
	// Refresh the idle clock at most once a minute: most requests stay read-only.
	if now.Sub(ss.LastSeenAt) > time.Minute {
		if _, err := s.w.ExecContext(ctx, `UPDATE staff_sessions SET last_seen_at = $2 WHERE token_hash = $1`, hash, toDB(now)); err != nil {
			return ss, err
		}
		ss.LastSeenAt = now
	}
	return ss, nil
}

func (s *Store) DeleteStaffSession(ctx context.Context, hash []byte) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM staff_sessions WHERE token_hash = $1`, hash)
	return err
}

func (s *Store) CreatePasswordReset(ctx context.Context, userID int64, hash []byte, expires time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES ($1, $2, $3)`, hash, userID, toDB(expires))
	return translate(err)
}

func (s *Store) ConsumePasswordReset(ctx context.Context, hash []byte, now time.Time) (int64, error) {
	var userID int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return translate(tx.QueryRowContext(ctx, `
			UPDATE password_resets SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id`,
			hash, toDB(now)).Scan(&userID))
	})
	return userID, err
}

func (s *Store) Members(ctx context.Context, accountID int64) ([]tidings.Member, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT u.id, u.email, u.name, u.operator, u.created_at, m.role, u.totp_enabled
		FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.account_id = $1 ORDER BY u.email`, accountID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (tidings.Member, error) {
		var m tidings.Member
		var created int64
		err := r.Scan(&m.ID, &m.Email, &m.Name, &m.Operator, &created, &m.Role, &m.TOTPEnabled)
		m.CreatedAt = fromDB(created)
		return m, err
	})
}

func (s *Store) RemoveMembership(ctx context.Context, accountID, userID int64) error {
	return rowsAffected(s.w.ExecContext(ctx, `DELETE FROM memberships WHERE account_id = $1 AND user_id = $2`, accountID, userID))
}

func (s *Store) ListUsers(ctx context.Context, p tidings.Page) ([]tidings.User, error) {
	p = p.Clamp()
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users WHERE id > $1 ORDER BY id LIMIT $2`, p.After, p.Limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanUser)
}

// Terms.

func (s *Store) PublishTerms(ctx context.Context, text string) (tidings.TermsVersion, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return tidings.TermsVersion{}, tidings.Invalid("text", "required", "is required")
	}
	if len(text) > 100000 {
		return tidings.TermsVersion{}, tidings.Invalid("text", "too_long", "must be at most 100000 bytes")
	}
	t := tidings.TermsVersion{Text: text, PublishedAt: s.stamp()}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM terms_versions`).Scan(&t.Version); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO terms_versions (version, body, published_at) VALUES ($1, $2, $3)`, t.Version, t.Text, toDB(t.PublishedAt))
		return translate(err)
	})
	return t, err
}

func (s *Store) LatestTerms(ctx context.Context) (tidings.TermsVersion, error) {
	var t tidings.TermsVersion
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT version, body, published_at FROM terms_versions ORDER BY version DESC LIMIT 1`).Scan(&t.Version, &t.Text, &at)
	t.PublishedAt = fromDB(at)
	return t, translate(err)
}

func (s *Store) AcceptTerms(ctx context.Context, userID int64, version int, ip string) error {
	_, err := s.w.ExecContext(ctx, `
		INSERT INTO terms_acceptances (user_id, version, accepted_at, ip) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, version) DO NOTHING`, userID, version, toDB(s.stamp()), ip)
	if err != nil {
		return translate(err)
	}
	return nil
}

func (s *Store) AcceptedTerms(ctx context.Context, userID int64) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM terms_acceptances WHERE user_id = $1`, userID).Scan(&v)
	return v, err
}

func (s *Store) TermsAcceptances(ctx context.Context, p tidings.Page) ([]tidings.TermsAcceptance, error) {
	p = p.Clamp()
	rows, err := s.r.QueryContext(ctx, `
		SELECT t.user_id, u.email, t.version, t.accepted_at, t.ip FROM terms_acceptances t JOIN users u ON u.id = t.user_id
		ORDER BY t.accepted_at DESC, t.user_id LIMIT $1`, p.Limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (tidings.TermsAcceptance, error) {
		var a tidings.TermsAcceptance
		var at int64
		err := r.Scan(&a.UserID, &a.Email, &a.Version, &at, &a.IP)
		a.AcceptedAt = fromDB(at)
		return a, err
	})
}

// Audit log.

func (s *Store) Audit(ctx context.Context, e tidings.AuditEntry) error {
	if e.Action == "" {
		return tidings.Invalid("action", "required", "is required")
	}
	if e.At.IsZero() {
		e.At = s.stamp()
	}
	account := sql.NullInt64{Int64: e.AccountID, Valid: e.AccountID != 0}
	_, err := s.w.ExecContext(ctx, `INSERT INTO audit_log (account_id, user_id, action, target, ip, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		account, e.UserID, e.Action, e.Target, e.IP, toDB(e.At))
	return translate(err)
}

func (s *Store) AuditLog(ctx context.Context, accountID int64, before int64, limit int) ([]tidings.AuditEntry, error) {
	limit = tidings.Page{Limit: limit}.Clamp().Limit
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := s.r.QueryContext(ctx, `
		SELECT a.id, COALESCE(a.account_id, 0), a.user_id, COALESCE(u.email, ''), a.action, a.target, a.ip, a.at
		FROM audit_log a LEFT JOIN users u ON u.id = a.user_id
		WHERE a.id < $1 AND ($2 = 0 OR a.account_id = $2) ORDER BY a.id DESC LIMIT $3`, before, accountID, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (tidings.AuditEntry, error) {
		var e tidings.AuditEntry
		var at int64
		err := r.Scan(&e.ID, &e.AccountID, &e.UserID, &e.UserEmail, &e.Action, &e.Target, &e.IP, &at)
		e.At = fromDB(at)
		return e, err
	})
}

// Breach register.

func (s *Store) CreateBreach(ctx context.Context, b *tidings.Breach) error {
	if err := b.Validate(); err != nil {
		return err
	}
	now := s.stamp()
	return s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `
			INSERT INTO breaches (title, description, data_categories, consequences, measures, occurred_at, discovered_at,
				authority_notified_at, closed_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id`,
			b.Title, b.Description, strings.Join(b.DataCategories, "\n"), b.Consequences, b.Measures, optionalTime(b.OccurredAt),
			toDB(b.DiscoveredAt), nullTime(b.AuthorityNotifiedAt), nullTime(b.ClosedAt), toDB(now)).Scan(&b.ID)
		if err != nil {
			return translate(err)
		}
		for i, a := range b.Accounts {
			// The account's name is copied: the register outlives deleted accounts.
			if err := tx.QueryRowContext(ctx, `
				INSERT INTO breach_accounts (breach_id, account_id, name) SELECT $1, id, name FROM accounts WHERE id = $2 RETURNING name`,
				b.ID, a.AccountID).Scan(&b.Accounts[i].Name); err != nil {
				if err == sql.ErrNoRows {
					return tidings.Invalid("accounts", "not_found", "account %d does not exist", a.AccountID)
				}
				return translate(err)
			}
		}
		b.CreatedAt, b.UpdatedAt = now, now
		return nil
	})
}

func optionalTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return toDB(t)
}

func (s *Store) UpdateBreach(ctx context.Context, b *tidings.Breach) error {
	if err := b.Validate(); err != nil {
		return err
	}
	now := s.stamp()
	err := rowsAffected(s.w.ExecContext(ctx, `
		UPDATE breaches SET title = $2, description = $3, data_categories = $4, consequences = $5, measures = $6, occurred_at = $7,
			discovered_at = $8, authority_notified_at = $9, closed_at = $10, updated_at = $11 WHERE id = $1`,
		b.ID, b.Title, b.Description, strings.Join(b.DataCategories, "\n"), b.Consequences, b.Measures, optionalTime(b.OccurredAt),
		toDB(b.DiscoveredAt), nullTime(b.AuthorityNotifiedAt), nullTime(b.ClosedAt), toDB(now)))
	if err == nil {
		b.UpdatedAt = now
	}
	return err
}

const breachCols = `id, title, description, data_categories, consequences, measures, occurred_at, discovered_at, authority_notified_at, closed_at, created_at, updated_at`

func scanBreach(r interface{ Scan(...any) error }) (tidings.Breach, error) {
	var b tidings.Breach
	var cats string
	var occurred, discovered, created, updated int64
	var notified, closed sql.NullInt64
	err := r.Scan(&b.ID, &b.Title, &b.Description, &cats, &b.Consequences, &b.Measures, &occurred, &discovered, &notified, &closed, &created, &updated)
	b.DataCategories = strings.Split(cats, "\n")
	if occurred != 0 {
		b.OccurredAt = fromDB(occurred)
	}
	b.DiscoveredAt, b.CreatedAt, b.UpdatedAt = fromDB(discovered), fromDB(created), fromDB(updated)
	b.AuthorityNotifiedAt, b.ClosedAt = fromDBPtr(notified), fromDBPtr(closed)
	b.Accounts = []tidings.BreachAccount{}
	return b, translate(err)
}

func (s *Store) GetBreach(ctx context.Context, id int64) (tidings.Breach, error) {
	b, err := scanBreach(s.r.QueryRowContext(ctx, `SELECT `+breachCols+` FROM breaches WHERE id = $1`, id))
	if err != nil {
		return b, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT account_id, name, notified_at FROM breach_accounts WHERE breach_id = $1 ORDER BY account_id`, id)
	if err != nil {
		return b, err
	}
	b.Accounts, err = collect(rows, func(r interface{ Scan(...any) error }) (tidings.BreachAccount, error) {
		var a tidings.BreachAccount
		var at sql.NullInt64
		err := r.Scan(&a.AccountID, &a.Name, &at)
		a.NotifiedAt = fromDBPtr(at)
		return a, err
	})
	return b, err
}

func (s *Store) ListBreaches(ctx context.Context) ([]tidings.Breach, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+breachCols+` FROM breaches ORDER BY id DESC`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanBreach)
}

func (s *Store) MarkBreachNotified(ctx context.Context, breachID, accountID int64, at time.Time) error {
	return rowsAffected(s.w.ExecContext(ctx, `UPDATE breach_accounts SET notified_at = $3 WHERE breach_id = $1 AND account_id = $2`,
		breachID, accountID, toDB(at)))
}
