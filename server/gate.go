package server

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/cloacina-go/cloacina/server/apikey"
)

// tenantGates orders, in this process, the writes of a tenant's requests
// with the tenant's deletion. A request holds its tenant's gate (and
// notes the gate's generation) from its authorisation to its end; it
// writes only while it holds the gate shared, and only if the generation
// is the one it noted. A deletion holds the gate exclusively and bumps
// the generation: a request authorised for the tenant before the
// deletion never writes after it, not even in a tenant re-created with
// the same id.
type tenantGates struct {
	mu sync.Mutex
	m  map[string]*gate
}

// gate is one tenant's.
type gate struct {
	rw   sync.RWMutex
	gen  uint64 // guarded by tenantGates.mu
	refs int    // guarded by tenantGates.mu
}

func newTenantGates() *tenantGates { return &tenantGates{m: map[string]*gate{}} }

// hold returns the tenant's gate and its generation, holding a reference
// to the gate until drop.
func (g *tenantGates) hold(tenantID string) (*gate, uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gt := g.m[tenantID]
	if gt == nil {
		gt = &gate{}
		g.m[tenantID] = gt
	}
	gt.refs++
	return gt, gt.gen
}

// drop gives back a reference taken by hold. A gate no request holds is
// forgotten: no request noted its generation.
func (g *tenantGates) drop(tenantID string, gt *gate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gt.refs--; gt.refs == 0 {
		delete(g.m, tenantID)
	}
}

func (g *tenantGates) generation(gt *gate) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return gt.gen
}

func (g *tenantGates) bump(gt *gate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	gt.gen++
}

// beginWrite is called by a handler before it writes: it holds the
// tenant's gate shared (so that no deletion of the tenant runs until the
// returned function is called), checks that the tenant is the
// incarnation the request was authorised for, and verifies the
// request's key again (a revoked key writes nothing). Call the returned
// function once the write is done.
func (s *Server) beginWrite(ctx context.Context, rq *request) (func(), error) {
	done := func() {}
	if rq.gate != nil {
		rq.gate.rw.RLock()
		done = rq.gate.rw.RUnlock
		if s.gates.generation(rq.gate) != rq.gen {
			done()
			return nil, tenantNotFound(rq.tenant)
		}
	}
	if err := s.reverify(ctx, rq); err != nil {
		done()
		return nil, err
	}
	return done, nil
}

// reverify checks that the request's key is still the valid key it was
// when the request was authorised.
func (s *Server) reverify(ctx context.Context, rq *request) error {
	if s.cfg.DisableAuth || rq.key.ID == configAdminKeyID {
		return nil // the configured admin key cannot be revoked while serving
	}
	if s.cfg.Keys == nil || rq.presented == "" {
		return errorf(http.StatusUnauthorized, codeUnauthorized, "invalid key")
	}
	k, err := s.cfg.Keys.Verify(ctx, rq.presented)
	if errors.Is(err, apikey.ErrInvalidKey) || (err == nil && (k.ID != rq.key.ID || k.TenantID != rq.key.TenantID || k.Role != rq.key.Role)) {
		rq.log.Info("a request's key was revoked while it was served", "key_id", rq.key.ID, "route", rq.route)
		return errorf(http.StatusUnauthorized, codeUnauthorized, "the key was revoked")
	}
	return err
}
