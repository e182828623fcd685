package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// NotifyChannel is the PostgreSQL channel on which writers announce that a
// schema has tasks ready to run.
const NotifyChannel = "cloacina_ready"

// ErrListenUnsupported is returned by Listen on SQLite.
var ErrListenUnsupported = errors.New("store: LISTEN/NOTIFY needs PostgreSQL")

// NotifyReady announces, when the transaction commits, that the store's
// schema has ready tasks. payload identifies the sender. A no-op on SQLite.
func (t *sqlTx) NotifyReady(ctx context.Context, sender string) error {
	if t.s.d.name != "postgres" {
		return nil
	}
	if err := t.exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, t.s.schema+" "+sender); err != nil {
		return fmt.Errorf("store: notify: %w", err)
	}
	return nil
}

// Listen calls fn(schema, sender) for each ready-work notification until
// ctx ends, on a dedicated connection that it re-opens with backoff when it
// breaks. It needs a direct PostgreSQL connection: PgBouncer in
// transaction-pooling mode cannot carry LISTEN, so listenURL may name the
// server directly while the pool goes through PgBouncer. connected is
// called each time the LISTEN is (re)established, so the caller can look
// for work it may have missed.
func (db *DB) Listen(ctx context.Context, listenURL string, fn func(schema, sender string), connected func()) error {
	if db.kind != "postgres" {
		return ErrListenUnsupported
	}
	if listenURL == "" {
		listenURL = db.url
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := listenOnce(ctx, listenURL, fn, connected, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return nil
		}
		_ = err // the caller polls meanwhile; keep trying
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	return nil
}

func listenOnce(ctx context.Context, url string, fn func(schema, sender string), connected, ok func()) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("store: listen: connect %s: %w", Redact(url), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return fmt.Errorf("store: listen: %w", err)
	}
	ok()
	if connected != nil {
		connected()
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("store: listen: %w", err)
		}
		schema, sender, _ := strings.Cut(n.Payload, " ")
		fn(schema, sender)
	}
}
