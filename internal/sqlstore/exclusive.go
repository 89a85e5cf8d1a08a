package sqlstore

import (
	"context"
	"hash/fnv"
)

// RunExclusive takes a PostgreSQL session advisory lock on one pooled connection, so
// that of several nodes only one runs fn; the others skip it. SQLite has one node.
func (s *Store) RunExclusive(ctx context.Context, name string, fn func(context.Context) error) (bool, error) {
	if s.engine != Postgres {
		return true, fn(ctx)
	}
	h := fnv.New64a()
	h.Write([]byte("tidings:" + name))
	key := int64(h.Sum64())
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil || !got {
		return false, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key)
	return true, fn(ctx)
}
