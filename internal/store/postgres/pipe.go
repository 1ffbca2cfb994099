package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/talonhq/talon/internal/store"
)

// pipe is a transaction sent in batches, BEGIN travelling with the first
// and COMMIT with the last: a transaction of two batches costs two round
// trips rather than four. The write paths that run on every step
// (Transition, CreateRuns) use it.
type pipe struct {
	conn       *pgxpool.Conn
	begun      bool
	commitSent bool // COMMIT went out: whether it applied may be unknown
	committed  bool
	// events says the transaction writes events: once it commits, the
	// subscribers are woken and other processes told (DB.eventsCommitted).
	events bool
}

// send sends b in the transaction, BEGIN first when it is the first
// batch and COMMIT last when last is set, and hands each of b's results,
// in order, to read.
func (p *pipe) send(ctx context.Context, b *pgx.Batch, last bool, read func(br pgx.BatchResults, n int) error) error {
	if p.committed {
		return errors.New("pipe: batch after commit")
	}
	full := &pgx.Batch{}
	if !p.begun {
		full.Queue("BEGIN")
	}
	full.QueuedQueries = append(full.QueuedQueries, b.QueuedQueries...)
	if last {
		full.Queue("COMMIT")
		p.commitSent = true
	}
	br := p.conn.SendBatch(ctx, full)
	err := func() error {
		if !p.begun {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("begin: %w", err)
			}
			p.begun = true
		}
		for n := range b.Len() {
			if err := read(br, n); err != nil {
				return err
			}
		}
		if last {
			tag, err := br.Exec()
			if err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			if tag.String() != "COMMIT" {
				// The server answers ROLLBACK to a COMMIT of a failed
				// transaction.
				return errors.New("commit: the transaction was rolled back")
			}
			p.committed = true
		}
		return nil
	}()
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// pipeTx runs fn in a pipelined transaction (see pipe), committing it
// after fn when fn's last batch did not. Like tx, it retries fn when the
// server aborted the transaction for a deadlock or a serialization
// failure, and when the database could not be reached before COMMIT was
// sent: then nothing can have been applied. fn must start afresh each
// time it is called.
func (db *DB) pipeTx(ctx context.Context, fn func(p *pipe) error) error {
	var err error
	for range maxAttempts {
		var conn *pgxpool.Conn
		conn, err = db.pool.Acquire(ctx)
		if err != nil {
			err = classify(fmt.Errorf("begin: %w", err))
			if ctx.Err() != nil || !errors.Is(err, store.ErrUnavailable) {
				return err
			}
			continue
		}
		p := &pipe{conn: conn}
		err = fn(p)
		if err == nil && p.begun && !p.committed {
			p.commitSent = true
			if _, cerr := conn.Exec(ctx, "COMMIT"); cerr != nil {
				err = fmt.Errorf("commit: %w", cerr)
			}
		}
		if err != nil && p.begun && !p.commitSent {
			// Best effort: a connection left in a transaction is closed
			// by the pool rather than reused.
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
		conn.Release()
		if err == nil {
			if p.events {
				db.eventsCommitted()
			}
			return nil
		}
		err = classify(err)
		if ctx.Err() != nil {
			return err
		}
		if retryable(err) || errors.Is(err, store.ErrUnavailable) && !p.commitSent {
			continue
		}
		return err
	}
	return err
}
