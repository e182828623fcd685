package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cloacina-go/cloacina/api"
	"github.com/cloacina-go/cloacina/server/apikey"
	"github.com/cloacina-go/cloacina/tenant"
)

// tenantCreator is a manager that creates tenants explicitly, such as
// tenant.SecureManager (its credentials go to its credential store).
type tenantCreator interface {
	CreateTenant(ctx context.Context, tenantID string) (*tenant.TenantCredentials, error)
}

// passwordRotator is a manager whose tenants have their own database
// role, such as tenant.SecureManager.
type passwordRotator interface {
	RotatePassword(ctx context.Context, tenantID string) (*tenant.TenantCredentials, error)
}

// createTenant: POST /tenants.
func (s *Server) createTenant(w http.ResponseWriter, r *http.Request, rq *request) error {
	var body struct {
		TenantID string `json:"tenant_id"`
	}
	if err := decode(rq, &body, false); err != nil {
		return err
	}
	id := body.TenantID
	rq.tenant = id
	ctx := r.Context()
	// Exclusive: not while a deletion of that id runs in this process.
	gt, _ := s.gates.hold(id)
	defer s.gates.drop(id, gt)
	gt.rw.Lock()
	defer gt.rw.Unlock()
	if err := s.reverify(ctx, rq); err != nil {
		return err
	}
	creator, explicit := s.cfg.Manager.(tenantCreator)
	if !explicit {
		// Runner creates a missing tenant: make check-then-create one step
		// in this process.
		s.creatingMu.Lock()
		defer s.creatingMu.Unlock()
	}
	exists, err := s.cfg.Manager.Exists(ctx, id)
	if err != nil {
		return err
	}
	if exists {
		return errorf(http.StatusConflict, codeTenantExists, "tenant %q already exists", id)
	}
	// Keys left by an earlier tenant of that id (whose removal could not
	// revoke them) must not open the new one.
	if s.cfg.Keys != nil {
		if n, err := s.cfg.Keys.DeleteTenant(ctx, id); err != nil {
			return err
		} else if n > 0 {
			rq.log.Warn("revoked keys left by an earlier tenant of the same id", "tenant", id, "keys", n)
		}
	}
	if explicit {
		// The credentials (with the password) stay with the manager.
		if _, err := creator.CreateTenant(ctx, id); err != nil {
			return err
		}
	} else if _, err := s.cfg.Manager.Runner(ctx, id); err != nil {
		return err
	}
	rq.log.Info("tenant created", "tenant", id)
	w.Header().Set("Location", location("tenants", id))
	writeJSON(w, http.StatusCreated, api.Tenant{TenantID: id, CreatedAt: time.Now().UTC()})
	return nil
}

// listTenants: GET /tenants.
func (s *Server) listTenants(w http.ResponseWriter, r *http.Request, _ *request) error {
	ids, err := s.cfg.Manager.Tenants(r.Context())
	if err != nil {
		return err
	}
	out := api.Tenants{Tenants: make([]api.Tenant, 0, len(ids))}
	for _, id := range ids {
		out.Tenants = append(out.Tenants, api.Tenant{TenantID: id})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getTenant: GET /tenants/{tenant_id}: 200 while the tenant exists (wrap
// answered 404 otherwise).
func (s *Server) getTenant(w http.ResponseWriter, _ *http.Request, rq *request) error {
	writeJSON(w, http.StatusOK, api.Tenant{TenantID: rq.tenant})
	return nil
}

// deleteTenant: DELETE /tenants/{tenant_id}. The tenant's keys are revoked
// first, so that no request can start on the tenant any more; the
// requests of this process authorised for it before then are refused
// (its gate's generation changes); its running tasks are told to stop
// and get Config.TenantDeleteGrace to end; then its data goes. None of it
// depends on the client staying: the work goes on if it leaves.
func (s *Server) deleteTenant(w http.ResponseWriter, r *http.Request, rq *request) error {
	ctx := context.WithoutCancel(r.Context())
	if err := s.reverify(ctx, rq); err != nil {
		return err
	}
	// Waits for the writes of this tenant's requests in flight (each
	// holds the gate for its write only, not while it waits).
	rq.gate.rw.Lock()
	defer rq.gate.rw.Unlock()
	if s.gates.generation(rq.gate) != rq.gen {
		return tenantNotFound(rq.tenant) // deleted by another request meanwhile
	}
	if err := s.requireTenant(ctx, rq.tenant); err != nil {
		return err
	}
	revoked := 0
	if s.cfg.Keys != nil {
		n, err := s.cfg.Keys.DeleteTenant(ctx, rq.tenant)
		if err != nil {
			return err
		}
		revoked = n
	}
	s.gates.bump(rq.gate)
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, s.cfg.TenantDeleteGrace)
	defer cancel()
	err := s.cfg.Manager.Remove(rctx, rq.tenant)
	// Requests that came while the removal ran noted the generation
	// bumped above: they must not write either (an admin creating a key,
	// say), so bump it again before letting them go.
	s.gates.bump(rq.gate)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			rq.log.Warn("a tenant could not be removed within the grace; its keys are revoked", "tenant", rq.tenant, "grace", s.cfg.TenantDeleteGrace.String())
			return errorf(http.StatusServiceUnavailable, codeUnavailable, "tenant %q could not be removed within %v (its keys are revoked); retry the DELETE", rq.tenant, s.cfg.TenantDeleteGrace)
		}
		return err
	}
	rq.log.Info("tenant removed", "tenant", rq.tenant, "keys_revoked", revoked, "took", time.Since(start).Round(time.Millisecond).String())
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rotatePassword: POST /tenants/{tenant_id}/rotate-password.
func (s *Server) rotatePassword(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := decode(rq, &struct{}{}, true); err != nil {
		return err
	}
	rot, ok := s.cfg.Manager.(passwordRotator)
	if !ok {
		return errorf(http.StatusConflict, codeNotSupported, "tenants have no database role of their own here: there is no password to rotate")
	}
	done, err := s.beginWrite(r.Context(), rq)
	if err != nil {
		return err
	}
	defer done()
	c, err := rot.RotatePassword(r.Context(), rq.tenant)
	if err != nil {
		return err
	}
	rq.log.Info("tenant password rotated", "tenant", rq.tenant, "username", c.Username)
	writeJSON(w, http.StatusOK, api.PasswordRotation{TenantID: rq.tenant, Username: c.Username, RotatedAt: time.Now().UTC()})
	return nil
}

// keyStore returns the key store, or a 409 when there is none
// (authentication disabled).
func (s *Server) keyStore() (apikey.Store, error) {
	if s.cfg.Keys == nil {
		return nil, errorf(http.StatusConflict, codeNotSupported, "this server keeps no keys: authentication is disabled")
	}
	return s.cfg.Keys, nil
}

// createKey: POST /tenants/{tenant_id}/keys.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request, rq *request) error {
	keys, err := s.keyStore()
	if err != nil {
		return err
	}
	var body struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}
	if err := decode(rq, &body, false); err != nil {
		return err
	}
	role := apikey.Role(body.Role)
	if role != apikey.RoleRead && role != apikey.RoleWrite {
		return errorf(http.StatusBadRequest, codeInvalidArgument, "role %q: a tenant key's role is %q or %q", body.Role, apikey.RoleRead, apikey.RoleWrite)
	}
	done, err := s.beginWrite(r.Context(), rq)
	if err != nil {
		return err
	}
	defer done()
	secret, k, err := keys.Create(r.Context(), rq.tenant, body.Name, role)
	if err != nil {
		return err
	}
	rq.log.Info("key created", "tenant", rq.tenant, "new_key_id", k.ID, "role", string(k.Role))
	writeJSON(w, http.StatusCreated, keyOf(k, secret))
	return nil
}

// listKeys: GET /tenants/{tenant_id}/keys.
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, rq *request) error {
	keys, err := s.keyStore()
	if err != nil {
		return err
	}
	ks, err := keys.List(r.Context(), rq.tenant)
	if err != nil {
		return err
	}
	out := api.Keys{Keys: make([]api.Key, 0, len(ks))}
	for _, k := range ks {
		out.Keys = append(out.Keys, keyOf(k, ""))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteKey: DELETE /tenants/{tenant_id}/keys/{key_id}.
func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request, rq *request) error {
	keys, err := s.keyStore()
	if err != nil {
		return err
	}
	id := r.PathValue("key_id")
	done, err := s.beginWrite(r.Context(), rq)
	if err != nil {
		return err
	}
	defer done()
	if err := keys.Delete(r.Context(), rq.tenant, id); err != nil {
		if errors.Is(err, apikey.ErrNotFound) {
			return errorf(http.StatusNotFound, codeKeyNotFound, "tenant %q has no key %q", rq.tenant, id)
		}
		return err
	}
	rq.log.Info("key deleted", "tenant", rq.tenant, "deleted_key_id", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
