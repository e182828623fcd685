package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloacina-go/cloacina"
)

// backend is where a manager keeps its tenants: a folder of SQLite files or
// the schemas of a PostgreSQL database. The manager core serialises the
// calls for one tenant (see manager.lock) and checks ids with validate
// before any other method sees them.
type backend interface {
	// validate checks a tenant id (ValidateID with the backend's rules).
	validate(id string) error
	// open opens the tenant's runner, creating and migrating its storage
	// when missing, and reports whether it created the storage. A failure
	// leaves no half-created tenant behind. Storage the manager did not
	// create is refused with an error wrapping ErrForeignStorage. The
	// caller holds the tenant's lock.
	open(ctx context.Context, id string) (r *cloacina.Runner, created bool, err error)
	// list returns the ids of the tenants that have storage with the
	// manager's marker, in any order.
	list(ctx context.Context) ([]string, error)
	// exists reports whether the tenant has storage with the manager's
	// marker.
	exists(ctx context.Context, id string) (bool, error)
	// delete deletes the tenant's storage, once its runner (if any) is shut
	// down; deleting missing storage is no error, and storage without the
	// manager's marker is never deleted (an error wrapping
	// ErrForeignStorage). The caller holds the tenant's lock.
	delete(ctx context.Context, id string) error
	// foreign returns an error wrapping ErrForeignStorage when the tenant's
	// place (schema, file) holds storage the manager did not create (no
	// marker), and nil otherwise.
	foreign(ctx context.Context, id string) error
	// where returns log attributes saying where the tenant is kept.
	where(id string) []any
	// close releases the backend, once every runner is shut down.
	close(ctx context.Context) error
}

// manager is the storage-independent part of every Manager: one cached
// runner per tenant, per-tenant locks so that creating or removing one
// tenant never blocks another, and the closing protocol. SQLiteManager and
// PostgresManager embed it (by value, so that only their pointers have its
// methods, and are Managers) with their backend. It is safe for concurrent
// use.
type manager struct {
	b         backend
	workflows map[string]bool // the names of the workflows every runner has
	log       *slog.Logger    // the manager's own logger

	mu     sync.Mutex
	closed bool
	slots  map[string]*slot
	// ops counts the goroutines holding or waiting for a slot's lock, and
	// the calls using a runner (see use), so that Close can wait for
	// creations, removals and calls in progress.
	ops sync.WaitGroup
}

// slot is one tenant's place in the manager.
type slot struct {
	// lock (a channel, so that waiting for it can end with a context) is
	// held while the tenant's runner is created or removed.
	lock chan struct{}
	// refs counts the goroutines holding or waiting for lock; guarded by
	// manager.mu. A slot with no refs, no runner and no uses is dropped.
	refs int
	// runner is the tenant's open runner, or nil. Guarded by manager.mu,
	// and set only by the holder of lock.
	runner *cloacina.Runner
	// uses counts the manager's calls using the runner (Execute,
	// ExecuteAsync, Metrics), and idle, when not nil, is closed when uses
	// drops to 0: Remove waits for it before deleting the tenant's data.
	// Guarded by manager.mu.
	uses int
	idle chan struct{}
	// used is when the runner was last handed out or given back, and
	// touches counts those moments; guarded by manager.mu. Idle closing
	// goes by them.
	used    time.Time
	touches uint64
}

// touch records a use of the slot's runner. The caller holds manager.mu.
func (s *slot) touch() {
	s.used = time.Now()
	s.touches++
}

// deleteTimeout bounds deleting a tenant's data once the context of Remove
// has ended (it ended while Remove waited for the tenant's tasks).
const deleteTimeout = 30 * time.Second

// readOptions applies opts to a zero Config, to learn what the managers
// need from them (logger, workflows, schema) before any runner exists.
func readOptions(opts []cloacina.Option) cloacina.Config {
	var cfg cloacina.Config
	cfg.Apply(opts...)
	return cfg
}

// init makes m a manager core over b, for runners configured by cfg (as
// read by readOptions); log is the manager's own logger.
func (m *manager) init(b backend, cfg cloacina.Config, log *slog.Logger) {
	m.b, m.log, m.slots = b, log, map[string]*slot{}
	m.workflows = make(map[string]bool, len(cfg.Workflows))
	for _, wf := range cfg.Workflows {
		if wf != nil {
			m.workflows[wf.Name()] = true
		}
	}
}

// check returns ErrManagerClosed after Close, and the error of an invalid
// id.
func (m *manager) check(tenantID string) error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrManagerClosed
	}
	return m.b.validate(tenantID)
}

// checkClosed returns ErrManagerClosed after Close, else ctx's error.
func (m *manager) checkClosed(ctx context.Context) error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrManagerClosed
	}
	return ctx.Err()
}

// Runner returns the tenant's runner, opening the tenant on first use
// (creating and migrating its storage when missing). Concurrent first
// calls for one tenant open exactly one runner; a failed opening is not
// remembered, so the next call tries again.
func (m *manager) Runner(ctx context.Context, tenantID string) (*cloacina.Runner, error) {
	return m.runner(ctx, tenantID, true)
}

// ExistingRunner is Runner for a tenant that has storage already: it
// creates none, and returns an error wrapping ErrTenantNotFound for a
// tenant without it. The check runs under the tenant's lock, so a Remove
// running at the same time cannot be undone by it.
func (m *manager) ExistingRunner(ctx context.Context, tenantID string) (*cloacina.Runner, error) {
	return m.runner(ctx, tenantID, false)
}

// OpenRunner returns the tenant's runner if it is open in this process,
// without opening it.
func (m *manager) OpenRunner(tenantID string) (*cloacina.Runner, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.slots[tenantID]; s != nil && s.runner != nil {
		return s.runner, true
	}
	return nil, false
}

func (m *manager) runner(ctx context.Context, tenantID string, create bool) (*cloacina.Runner, error) {
	if err := m.check(tenantID); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if s := m.slots[tenantID]; s != nil && s.runner != nil {
		r := s.runner
		s.touch()
		m.mu.Unlock()
		return r, nil
	}
	m.mu.Unlock()

	s, err := m.lock(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	defer m.unlock(tenantID, s)
	m.mu.Lock()
	r := s.runner // opened while this call waited
	if r != nil {
		s.touch()
	}
	m.mu.Unlock()
	if r != nil {
		return r, nil
	}
	if !create {
		ok, err := m.b.exists(ctx, tenantID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrTenantNotFound, tenantID)
		}
	}
	r, created, err := m.b.open(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	attrs := append([]any{"tenant", tenantID}, m.b.where(tenantID)...)
	if created {
		m.log.Info("tenant created", attrs...)
	} else {
		m.log.Debug("tenant opened", attrs...)
	}
	m.mu.Lock()
	if m.closed {
		// Close ran while the runner was being opened and could not see it.
		m.mu.Unlock()
		// The runner was never handed out, so no task of this call runs:
		// nothing to wait for.
		if err := r.Shutdown(context.WithoutCancel(ctx)); err != nil {
			m.log.Warn("shutting down a runner opened during Close", "tenant", tenantID, "err", err)
		}
		return nil, ErrManagerClosed
	}
	s.runner = r
	s.touch()
	m.mu.Unlock()
	return r, nil
}

// lock takes the tenant's lock, waiting until ctx ends.
func (m *manager) lock(ctx context.Context, id string) (*slot, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrManagerClosed
	}
	s := m.slots[id]
	if s == nil {
		s = &slot{lock: make(chan struct{}, 1)}
		m.slots[id] = s
	}
	s.refs++
	m.ops.Add(1)
	m.mu.Unlock()
	select {
	case s.lock <- struct{}{}:
		return s, nil
	case <-ctx.Done():
		m.release(id, s)
		return nil, fmt.Errorf("tenant %q: waiting for another operation on the tenant: %w", id, ctx.Err())
	}
}

// unlock releases the tenant's lock taken by lock.
func (m *manager) unlock(id string, s *slot) {
	<-s.lock
	m.release(id, s)
}

func (m *manager) release(id string, s *slot) {
	m.mu.Lock()
	s.refs--
	m.dropIdle(id, s)
	m.mu.Unlock()
	m.ops.Done()
}

// dropIdle forgets a slot that nothing holds, waits for or uses. The
// caller holds m.mu.
func (m *manager) dropIdle(id string, s *slot) {
	if s.refs == 0 && s.runner == nil && s.uses == 0 && m.slots[id] == s {
		delete(m.slots, id)
	}
}

// use returns the tenant's runner, opening it when needed, for one call of
// the manager; the caller calls done once it no longer uses the runner.
// Remove waits for such calls (until its ctx, the grace, ends) before
// deleting the tenant's data, and Close before closing the storage, so
// that a call racing with them ends with the runner's error
// (ErrRunnerClosed) or its result; a call still running when Remove's
// grace ends may see the data go under it.
func (m *manager) use(ctx context.Context, tenantID string, create bool) (r *cloacina.Runner, done func(), err error) {
	return m.useAs(ctx, tenantID, create, true)
}

// look is use for a call that only reads the tenant's state (Metrics): it
// holds the runner as use does, but does not count as activity, so that a
// monitoring scrape, which reads every open tenant every few seconds, does
// not keep idle tenants open.
func (m *manager) look(ctx context.Context, tenantID string) (r *cloacina.Runner, done func(), err error) {
	return m.useAs(ctx, tenantID, false, false)
}

func (m *manager) useAs(ctx context.Context, tenantID string, create, active bool) (r *cloacina.Runner, done func(), err error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, nil, ErrManagerClosed
		}
		if s := m.slots[tenantID]; s != nil && s.runner != nil {
			s.uses++
			if active {
				s.touch()
			}
			m.ops.Add(1)
			r := s.runner
			m.mu.Unlock()
			return r, func() { m.unuse(tenantID, s, active) }, nil
		}
		m.mu.Unlock()
		// Open the runner, then take it as above, unless a Remove took it
		// away meanwhile.
		if _, err := m.runner(ctx, tenantID, create); err != nil {
			return nil, nil, err
		}
	}
}

func (m *manager) unuse(id string, s *slot, active bool) {
	m.mu.Lock()
	s.uses--
	if active {
		s.touch()
	}
	if s.uses == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	m.dropIdle(id, s)
	m.mu.Unlock()
	m.ops.Done()
}

// idleTenants returns, sorted, the tenants whose runner is open, unused by
// any call of the manager, and was last handed out at least idle ago.
func (m *manager) idleTenants(idle time.Duration) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, s := range m.slots {
		if s.runner != nil && s.uses == 0 && time.Since(s.used) >= idle {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// evict shuts the tenant's runner down if nothing is using it: no call of
// the manager, no operation holding or waiting for the tenant's lock, and
// busy (called with the runner) reports no work that keeps it open. After
// the shutdown it calls after (when not nil), still holding the tenant's
// lock. It reports whether it shut the runner down. It never waits for a
// lock, so it may be called while holding another tenant's lock.
//
// The runner stays in its slot while busy decides, so that calls arriving
// meanwhile use it as usual; any such call (it changes the slot's use
// time) keeps the runner open. Once the runner is taken out, calls wait
// for the tenant's lock and open a new runner after the shutdown. Runners
// handed out before (Runner, ExistingRunner) end their calls with
// [cloacina.ErrRunnerClosed]: call Runner again.
//
// minIdle is how long the runner must have gone unused, checked again
// here under the same hold of m.mu that takes the use count evict later
// compares: a runner handed out after the caller chose it as idle is
// never shut down under its new user.
func (m *manager) evict(ctx context.Context, id string, minIdle time.Duration, busy func(context.Context, *cloacina.Runner) bool, after func(context.Context)) bool {
	m.mu.Lock()
	s := m.slots[id]
	if m.closed || s == nil || s.runner == nil || s.uses > 0 || s.refs > 0 || time.Since(s.used) < minIdle {
		m.mu.Unlock()
		return false
	}
	select {
	case s.lock <- struct{}{}:
	default:
		m.mu.Unlock()
		return false
	}
	s.refs++
	m.ops.Add(1)
	r, touches := s.runner, s.touches
	m.mu.Unlock()
	defer m.unlock(id, s)

	keep := busy(ctx, r)
	m.mu.Lock()
	if keep || m.closed || s.runner != r || s.uses > 0 || s.touches != touches {
		// Busy, used meanwhile, or taken by Close, which shuts it down.
		m.mu.Unlock()
		return false
	}
	s.runner = nil
	m.mu.Unlock()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
	defer cancel()
	if err := r.Shutdown(sctx); err != nil {
		m.log.Warn("shutting down an idle tenant runner", "tenant", id, "err", err)
	}
	if after != nil {
		after(sctx)
	}
	return true
}

// reopenIfBusy opens the tenant's runner again, after an evict, when
// stillBusy reports work in its storage: a runner handed out long ago
// (Runner, ExistingRunner) may have recorded an execution between
// evict's look at the storage and the shutdown, and accepted work must
// not wait for the next call. It takes the tenant's lock, and does
// nothing when another call opened the runner meanwhile or the manager is
// closed.
func (m *manager) reopenIfBusy(ctx context.Context, id string, stillBusy func(context.Context) bool) {
	if !stillBusy(ctx) {
		return
	}
	if _, err := m.ExistingRunner(ctx, id); err != nil && !errors.Is(err, ErrManagerClosed) && !errors.Is(err, ErrTenantNotFound) {
		m.log.Warn("reopening a tenant whose work arrived while it was closed", "tenant", id, "err", err)
	}
}

// Execute runs a workflow for a tenant and waits for the result (see
// [cloacina.Runner.Execute]). An unknown workflow is refused before the
// tenant's storage is created.
func (m *manager) Execute(ctx context.Context, tenantID, workflow string, input any) (*cloacina.Result, error) {
	r, done, err := m.runnerFor(ctx, tenantID, workflow)
	if err != nil {
		return nil, err
	}
	defer done()
	res, err := r.Execute(ctx, workflow, input)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: %w", tenantID, err)
	}
	return res, nil
}

// ExecuteAsync starts a workflow for a tenant (see
// [cloacina.Runner.ExecuteAsync]). An unknown workflow is refused before
// the tenant's storage is created.
func (m *manager) ExecuteAsync(ctx context.Context, tenantID, workflow string, input any) (*cloacina.ExecutionHandle, error) {
	r, done, err := m.runnerFor(ctx, tenantID, workflow)
	if err != nil {
		return nil, err
	}
	defer done()
	h, err := r.ExecuteAsync(ctx, workflow, input)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: %w", tenantID, err)
	}
	return h, nil
}

func (m *manager) runnerFor(ctx context.Context, tenantID, workflow string) (*cloacina.Runner, func(), error) {
	if err := m.check(tenantID); err != nil {
		return nil, nil, err
	}
	if !m.workflows[workflow] {
		return nil, nil, fmt.Errorf("%w: %q", cloacina.ErrUnknownWorkflow, workflow)
	}
	return m.use(ctx, tenantID, true)
}

// Tenants lists the tenants that have storage, sorted (byte-wise).
// Storage whose name is not a valid tenant id is ignored.
func (m *manager) Tenants(ctx context.Context) ([]string, error) {
	if err := m.checkClosed(ctx); err != nil {
		return nil, err
	}
	ids, err := m.b.list(ctx)
	if err != nil {
		return nil, err
	}
	if ids == nil {
		ids = []string{}
	}
	slices.Sort(ids)
	return ids, nil
}

// attachParallelism bounds how many existing tenants attachExisting
// attaches at once.
const attachParallelism = 4

// attachExisting opens the runner of every tenant that has storage,
// attachParallelism at a time, so that work an earlier process left
// behind runs again. NewPostgresManager and NewSecureManager (in
// SharedPoolSwitchRole mode) call it at start.
//
// The failure rule: every tenant is tried; a tenant that cannot be
// attached is logged (Warn, with its id and the error) and skipped, and
// its next use tries again. One broken tenant (a schema its role may not
// migrate, a damaged table) must not keep every other tenant from being
// served. attachExisting fails, and the start with it, only when listing
// the tenants fails, when ctx ends (tenants not yet tried are not tried),
// or when every tenant failed: that is no broken tenant but a systematic
// fault (the database unreachable, missing privileges), which a service
// must not start over. Its error then wraps the first failure in id order.
func (m *manager) attachExisting(ctx context.Context) error {
	ids, err := m.Tenants(ctx)
	if err != nil {
		return fmt.Errorf("tenant: listing existing tenants: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	errs := make([]error, len(ids))
	sem := make(chan struct{}, attachParallelism)
	var wg sync.WaitGroup
	tried := 0
loop:
	for i, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		tried++
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := m.Runner(ctx, id); err != nil {
				errs[i] = err
				m.log.Warn("attaching an existing tenant failed; its next use tries again", "tenant", id, "err", err)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tenant: attaching existing tenants (%d of %d tried): %w", tried, len(ids), err)
	}
	failed := 0
	var first error
	for i, err := range errs {
		if err != nil {
			failed++
			if first == nil {
				first = fmt.Errorf("tenant %q: %w", ids[i], err)
			}
		}
	}
	if failed == len(ids) {
		return fmt.Errorf("tenant: attaching existing tenants: all %d failed, the first: %w", failed, first)
	}
	if failed > 0 {
		m.log.Warn("existing tenants attached, some failed", "tenants", len(ids)-failed, "failed", failed)
	} else {
		m.log.Info("existing tenants attached", "tenants", len(ids))
	}
	return nil
}

// Exists reports whether the tenant has storage.
func (m *manager) Exists(ctx context.Context, tenantID string) (bool, error) {
	if err := m.checkClosed(ctx); err != nil {
		return false, err
	}
	if err := m.b.validate(tenantID); err != nil {
		return false, err
	}
	return m.b.exists(ctx, tenantID)
}

// Remove deletes a tenant: it cancels the tenant's running tasks at once
// (their contexts are cancelled), waits for them to return and for the
// manager's calls using the runner (Execute, ExecuteAsync, Metrics: they
// end with [cloacina.ErrRunnerClosed] or their result) until ctx ends, and
// deletes all of the tenant's data, even when ctx has ended by then: ctx
// is the grace given to the tasks, not a way to keep the data. A task that
// ignores its context is abandoned by the engine a few seconds after the
// cancellation (see [cloacina.Runner.Shutdown]); Remove waits for that.
// Removing a tenant that has neither a runner nor storage returns
// [ErrTenantNotFound]; storage the manager did not create (a schema or
// file without its marker) is never deleted: that is [ErrForeignStorage].
// A later Runner call for the tenant creates new, empty storage (except on
// a [SecureManager], whose tenants come from CreateTenant only).
//
// Remove returns nil once the data is deleted: an error of the runner's
// shutdown (such as interrupted tasks) is logged.
func (m *manager) Remove(ctx context.Context, tenantID string) error {
	if err := m.check(tenantID); err != nil {
		return err
	}
	s, err := m.lock(ctx, tenantID)
	if err != nil {
		return err
	}
	defer m.unlock(tenantID, s)
	exists, err := m.Exists(ctx, tenantID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	r := s.runner
	s.runner = nil
	m.mu.Unlock()
	if r == nil && !exists {
		if err := m.b.foreign(ctx, tenantID); err != nil {
			return err
		}
		return fmt.Errorf("%w: %q", ErrTenantNotFound, tenantID)
	}
	if r != nil {
		m.cancelAndShutdown(ctx, tenantID, r)
		// Calls of the manager still using the runner end promptly now that
		// it is shut down: let them finish on the tenant's data.
		m.mu.Lock()
		var idle chan struct{}
		if s.uses > 0 {
			if s.idle == nil {
				s.idle = make(chan struct{})
			}
			idle = s.idle
		}
		m.mu.Unlock()
		if idle != nil {
			select {
			case <-idle:
			case <-ctx.Done():
			}
		}
	}
	dctx := ctx
	if ctx.Err() != nil {
		// ctx bounded the wait for the tenant's tasks: the data goes anyway.
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
		defer cancel()
	}
	if err := m.b.delete(dctx, tenantID); err != nil {
		if errors.Is(err, ErrForeignStorage) {
			return err
		}
		return fmt.Errorf("tenant %q: deleting its data: %w", tenantID, err)
	}
	m.log.Info("tenant removed", append([]any{"tenant", tenantID}, m.b.where(tenantID)...)...)
	return nil
}

// cancelAndShutdown shuts a removed tenant's runner down with its running
// tasks cancelled at once (a shutdown whose context has already ended).
// The shutdown lasts as long as the tasks take to return; the engine
// abandons a task that ignores its context a few seconds after the
// cancellation, so the wait is bounded even when ctx has ended. (The data
// cannot go before: a PostgreSQL schema with a runner is not dropped.)
func (m *manager) cancelAndShutdown(ctx context.Context, tenantID string, r *cloacina.Runner) {
	now, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cancel()
	done := make(chan error, 1)
	go func() { done <- r.Shutdown(now) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		m.log.Warn("the tasks of a removed tenant did not return within the grace period", "tenant", tenantID)
		err = <-done
	}
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
		// Expected: the removal cancelled the tenant's tasks. The error
		// says which were interrupted; a failure joined to it (closing the
		// database) is in its text too.
		m.log.Info("the running tasks of a removed tenant were cancelled", "tenant", tenantID, "detail", err)
	default:
		m.log.Warn("shutting down the runner of a removed tenant", "tenant", tenantID, "err", err)
	}
}

// Metrics returns the tenant's metrics, computed in SQL by
// [cloacina.Runner.Metrics]. It opens the tenant's runner when needed but
// creates no storage: a tenant without storage is an error wrapping
// [ErrTenantNotFound]. Reading metrics is not activity: it does not keep
// an idle SQLite tenant open (see [SQLiteConfig.IdleTimeout]).
func (m *manager) Metrics(ctx context.Context, tenantID string) (*cloacina.Metrics, error) {
	if err := m.check(tenantID); err != nil {
		return nil, err
	}
	r, done, err := m.look(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	defer done()
	mt, err := r.Metrics(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: metrics: %w", tenantID, err)
	}
	return mt, nil
}

// OpenMetrics returns the tenant's metrics if its runner is open in this
// process, and ok false (with no error) if it is not: unlike Metrics it
// never opens a runner. Like Metrics it is not activity, so a monitoring
// scrape of the open tenants neither reopens an idle-closed tenant nor
// keeps one open. The runner is held (not closed under the call) while it
// reads.
func (m *manager) OpenMetrics(ctx context.Context, tenantID string) (mt *cloacina.Metrics, ok bool, err error) {
	m.mu.Lock()
	s := m.slots[tenantID]
	if m.closed || s == nil || s.runner == nil {
		m.mu.Unlock()
		return nil, false, nil
	}
	s.uses++
	m.ops.Add(1)
	r := s.runner
	m.mu.Unlock()
	defer m.unuse(tenantID, s, false)
	mt, err = r.Metrics(ctx)
	if errors.Is(err, cloacina.ErrRunnerClosed) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("tenant %q: metrics: %w", tenantID, err)
	}
	return mt, true, nil
}

// OpenTenants returns, sorted, the tenants whose runner is open.
func (m *manager) OpenTenants() []string {
	m.mu.Lock()
	ids := make([]string, 0, len(m.slots))
	for id, s := range m.slots {
		if s.runner != nil {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	slices.Sort(ids)
	return ids
}

// Close shuts every tenant's runner down (see [cloacina.Runner.Shutdown]),
// all at once, each waiting for its running tasks until ctx ends, then
// waits for creations, removals and calls in progress, and then releases the
// storage (a PostgresManager shuts its engine down). The errors are
// joined. After Close, every method, Close included, returns
// [ErrManagerClosed]. The tenants' data is kept.
func (m *manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrManagerClosed
	}
	m.closed = true
	type open struct {
		id string
		r  *cloacina.Runner
	}
	var runners []open
	for id, s := range m.slots {
		if s.runner != nil {
			runners = append(runners, open{id, s.runner})
			s.runner = nil
		}
	}
	m.mu.Unlock()
	slices.SortFunc(runners, func(a, b open) int { return strings.Compare(a.id, b.id) })

	errs := make([]error, len(runners)+2)
	var wg sync.WaitGroup
	for i, o := range runners {
		wg.Go(func() {
			if err := o.r.Shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("tenant %q: shutting down: %w", o.id, err)
			}
		})
	}
	wg.Wait()
	// A runner being opened now is shut down by its opener, which sees
	// that the manager is closed; a removal in progress finishes, and so
	// do the calls using the runners, which are shut down.
	idle := make(chan struct{})
	go func() { m.ops.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-ctx.Done():
		errs[len(runners)] = fmt.Errorf("tenant: waiting for tenant operations in progress: %w", ctx.Err())
	}
	if err := m.b.close(ctx); err != nil {
		errs[len(runners)+1] = fmt.Errorf("tenant: closing: %w", err)
	}
	m.log.Info("tenant manager closed", "runners", len(runners))
	return errors.Join(errs...)
}
