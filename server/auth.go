package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/cloacina-go/cloacina/server/apikey"
)

// configAdminKeyID names the configured admin key (Config.AdminKey) in
// logs.
const configAdminKeyID = "config-admin-key"

// authorize checks the request's key against the route's access, in this
// order: 401 without a valid key; 403 for a tenant key on an admin route;
// 404 tenant_not_found for a tenant key on another tenant's routes (the
// answer for a tenant that does not exist); 403 for a read key on a write
// route.
func (s *Server) authorize(r *http.Request, a access, rq *request) error {
	if a == public {
		return nil
	}
	if s.cfg.DisableAuth {
		rq.key = apikey.Key{Role: apikey.RoleAdmin}
		return nil
	}
	k, presented, err := s.authenticate(r)
	if err != nil {
		return err
	}
	rq.key, rq.presented = k, presented
	if k.Role == apikey.RoleAdmin || a == anyKey {
		return nil
	}
	if a == adminOnly {
		return errorf(http.StatusForbidden, codeForbidden, "this route needs an admin key")
	}
	if k.TenantID != rq.tenant {
		return tenantNotFound(rq.tenant)
	}
	if a == tenantWrite && k.Role != apikey.RoleWrite {
		return errorf(http.StatusForbidden, codeForbidden, "this route needs a write key")
	}
	return nil
}

// authenticate returns the key of the Authorization header, and the key
// as presented.
func (s *Server) authenticate(r *http.Request) (apikey.Key, string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return apikey.Key{}, "", errorf(http.StatusUnauthorized, codeUnauthorized, "missing Authorization: Bearer <key>")
	}
	scheme, presented, ok := strings.Cut(h, " ")
	presented = strings.TrimSpace(presented)
	if !ok || !strings.EqualFold(scheme, "Bearer") || presented == "" {
		return apikey.Key{}, "", errorf(http.StatusUnauthorized, codeUnauthorized, "the Authorization header is not Bearer <key>")
	}
	if s.adminHash != nil {
		sum := sha256.Sum256([]byte(presented))
		if subtle.ConstantTimeCompare(sum[:], s.adminHash) == 1 {
			return apikey.Key{ID: configAdminKeyID, Name: "admin key from the configuration", Role: apikey.RoleAdmin}, presented, nil
		}
	}
	if s.cfg.Keys == nil {
		return apikey.Key{}, "", errorf(http.StatusUnauthorized, codeUnauthorized, "invalid key")
	}
	k, err := s.cfg.Keys.Verify(r.Context(), presented)
	if errors.Is(err, apikey.ErrInvalidKey) {
		return apikey.Key{}, "", errorf(http.StatusUnauthorized, codeUnauthorized, "invalid key")
	}
	if err != nil {
		return apikey.Key{}, "", err
	}
	return k, presented, nil
}
