package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
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
	return db.ListenChecked(ctx, listenURL, fn, connected, nil)
}

// ListenProbeWait is how long ListenChecked waits for its probe.
const ListenProbeWait = 2 * time.Second

// probePrefix starts the payload of a probe notification: its first word,
// where a ready-work notification has its schema, is no valid schema name.
const probePrefix = "cloacina-listen-probe"

// ListenChecked is Listen that also checks, each time the LISTEN is
// (re)established, that notifications reach it: it sends a probe through
// the pool (NOTIFY, as writers do) and calls undelivered when the LISTEN
// connection has not received it within ListenProbeWait. That is what a
// LISTEN through a transaction pooler (PgBouncer in transaction mode) does:
// the LISTEN stays on whichever server connection ran it, while the
// client's connection waits on none. undelivered may be nil.
func (db *DB) ListenChecked(ctx context.Context, listenURL string, fn func(schema, sender string), connected func(), undelivered func()) error {
	if db.kind != "postgres" {
		return ErrListenUnsupported
	}
	if listenURL == "" {
		listenURL = db.url
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := db.listenOnce(ctx, listenURL, fn, connected, undelivered, func() { backoff = 100 * time.Millisecond })
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

func (db *DB) listenOnce(ctx context.Context, url string, fn func(schema, sender string), connected, undelivered, ok func()) error {
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
	// The probe's payload and a signal closed when it
	// arrives.
	var probe string
	arrived := make(chan struct{})
	var once sync.Once
	if undelivered != nil {
		probe = probePrefix + " " + rand.Text() // base32: nothing to quote
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go db.sendProbe(pctx, probe, arrived, undelivered)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("store: listen: %w", err)
		}
		if strings.HasPrefix(n.Payload, probePrefix+" ") {
			// Probes (ours, or other processes') are not ready work.
			if probe != "" && n.Payload == probe {
				once.Do(func() { close(arrived) })
			}
			continue
		}
		schema, sender, _ := strings.Cut(n.Payload, " ")
		fn(schema, sender)
	}
}

// sendProbe sends the probe payload through the pool and calls
// undelivered unless arrived closes within ListenProbeWait. A probe that
// cannot be sent (the pool's own trouble, reported where it is used) tells
// nothing.
func (db *DB) sendProbe(ctx context.Context, payload string, arrived <-chan struct{}, undelivered func()) {
	// Without parameters: the simple protocol, whatever the URL's exec mode.
	q := "SELECT pg_notify('" + NotifyChannel + "', '" + payload + "')"
	if _, err := db.w.ExecContext(ctx, q); err != nil {
		return
	}
	t := time.NewTimer(ListenProbeWait)
	defer t.Stop()
	select {
	case <-arrived:
	case <-ctx.Done():
	case <-t.C:
		undelivered()
	}
}
