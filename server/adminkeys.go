package server

import (
	"errors"
	"net/http"

	"github.com/cloacina-go/cloacina/api"
	"github.com/cloacina-go/cloacina/server/apikey"
)

// createAdminKey: POST /admin/keys {"name"}: another admin key, shown
// once (to rotate one: create, switch, delete the old).
func (s *Server) createAdminKey(w http.ResponseWriter, r *http.Request, rq *request) error {
	keys, err := s.keyStore()
	if err != nil {
		return err
	}
	var body struct {
		Name string `json:"name"`
	}
	if err := decode(rq, &body, false); err != nil {
		return err
	}
	done, err := s.beginWrite(r.Context(), rq)
	if err != nil {
		return err
	}
	defer done()
	secret, k, err := keys.Create(r.Context(), "", body.Name, apikey.RoleAdmin)
	if err != nil {
		return err
	}
	rq.log.Info("admin key created", "new_key_id", k.ID)
	writeJSON(w, http.StatusCreated, keyOf(k, secret))
	return nil
}

// listAdminKeys: GET /admin/keys: the stored admin keys (not the one of
// the configuration, which is not stored).
func (s *Server) listAdminKeys(w http.ResponseWriter, r *http.Request, _ *request) error {
	keys, err := s.keyStore()
	if err != nil {
		return err
	}
	ks, err := keys.List(r.Context(), "")
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

// deleteAdminKey: DELETE /admin/keys/{key_id}. A request may not revoke
// the key it is made with (409 key_in_use): revoke it with another admin
// key, so that nobody locks themselves out by mistake.
func (s *Server) deleteAdminKey(w http.ResponseWriter, r *http.Request, rq *request) error {
	keys, err := s.keyStore()
	if err != nil {
		return err
	}
	id := r.PathValue("key_id")
	if id == rq.key.ID {
		return errorf(http.StatusConflict, codeKeyInUse, "key %q makes this request: revoke it with another admin key", id)
	}
	// One revocation of an admin key at a time, each re-verifying its own
	// key inside: two admin keys revoking each other at once would
	// otherwise both succeed and leave no stored admin key.
	s.adminKeysMu.Lock()
	defer s.adminKeysMu.Unlock()
	done, err := s.beginWrite(r.Context(), rq)
	if err != nil {
		return err
	}
	defer done()
	if err := keys.Delete(r.Context(), "", id); err != nil {
		if errors.Is(err, apikey.ErrNotFound) {
			return errorf(http.StatusNotFound, codeKeyNotFound, "there is no admin key %q", id)
		}
		return err
	}
	rq.log.Info("admin key deleted", "deleted_key_id", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
