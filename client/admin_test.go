package client_test

import (
	"errors"
	"testing"

	"github.com/cloacina-go/cloacina/client"
)

// TestAdminKeys: admin keys are created, listed and revoked through the
// client; a key cannot revoke itself.
func TestAdminKeys(t *testing.T) {
	url := newServer(t)
	ctx := testCtx(t)
	c := client.New(url, client.WithAPIKey(adminKey))
	k, err := c.CreateAdminKey(ctx, "ops")
	if err != nil || k.Secret == "" || k.Role != client.RoleAdmin {
		t.Fatalf("CreateAdminKey: %+v %v", k, err)
	}
	c2 := client.New(url, client.WithAPIKey(k.Secret))
	keys, err := c2.ListAdminKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].KeyID != k.KeyID || keys[0].Secret != "" {
		t.Fatalf("ListAdminKeys: %+v %v", keys, err)
	}
	if err := c2.DeleteAdminKey(ctx, k.KeyID); !client.IsConflict(err) || client.ErrorCode(err) != "key_in_use" {
		t.Fatalf("a key revoking itself: %v", err)
	}
	if err := c.DeleteAdminKey(ctx, k.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.ListAdminKeys(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("a revoked admin key: %v", err)
	}
	if err := c.DeleteAdminKey(ctx, k.KeyID); !client.IsNotFound(err) {
		t.Fatalf("deleting it again: %v", err)
	}
	if err := c.DeleteAdminKey(ctx, ""); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("empty key id: %v", err)
	}
}

// TestTenantExists: GetTenant and TenantExists tell a tenant that exists
// from a deleted one.
func TestTenantExists(t *testing.T) {
	url := newServer(t)
	ctx := testCtx(t)
	c := client.New(url, client.WithAPIKey(adminKey))
	if ok, err := c.TenantExists(ctx, "acme"); ok || err != nil {
		t.Fatalf("before: %v %v", ok, err)
	}
	if _, err := c.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if tn, err := c.GetTenant(ctx, "acme"); err != nil || tn.TenantID != "acme" {
		t.Fatalf("GetTenant: %+v %v", tn, err)
	}
	if ok, err := c.TenantExists(ctx, "acme"); !ok || err != nil {
		t.Fatalf("created: %v %v", ok, err)
	}
	if err := c.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.TenantExists(ctx, "acme"); ok || err != nil {
		t.Fatalf("deleted: %v %v", ok, err)
	}
	bad := client.New(url, client.WithAPIKey("nope"))
	if _, err := bad.TenantExists(ctx, "acme"); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("a bad key is not \"deleted\": %v", err)
	}
}
