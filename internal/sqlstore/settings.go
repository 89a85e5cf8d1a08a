package sqlstore

import (
	"context"

	"github.com/tidings/tidings/internal/tidings"
)

func (s *Store) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v)
	return v, translate(err)
}

func (s *Store) PutSetting(ctx context.Context, key, value string) error {
	if key == "" {
		return tidings.Invalid("key", "required", "is required")
	}
	_, err := s.w.ExecContext(ctx, `
		INSERT INTO settings (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return translate(err)
}
