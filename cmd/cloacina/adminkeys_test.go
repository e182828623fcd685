package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/client"
	"github.com/cloacina-go/cloacina/server/apikey"
)

// TestAdminKeyCommands: keys create/list/revoke --admin against a real
// server that generated its admin key. A second admin key is created (its
// secret printed once, on stdout); the list shows both ids and no secret;
// the generated key cannot revoke itself (a clear message, exit 1); the
// command serve prints for it (cloacina keys revoke --admin <id>), run
// with the second key, revokes it, and it gets 401 afterwards.
func TestAdminKeyCommands(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	dir := t.TempDir()
	p := startServe(t, dir, nil)
	data, err := os.ReadFile(filepath.Join(dir, defaultDataDir, adminKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	genKey := strings.TrimSpace(string(data))
	genID, ok := apikey.ParseID(genKey)
	if !ok {
		t.Fatal("admin.key holds no key")
	}

	// Text output: the secret once, after the table.
	out := mustCLI(t, ctx, p.url, genKey, "keys", "create", "--admin", "--name", "ops")
	i := strings.Index(out, "key (shown only once): ")
	if i < 0 || !strings.Contains(out, "admin") || !strings.Contains(out, "ops") {
		t.Fatalf("keys create --admin:\n%s", out)
	}
	second := strings.TrimSpace(out[i+len("key (shown only once): "):])
	secondID, ok := apikey.ParseID(second)
	if !ok || secondID == genID {
		t.Fatalf("keys create --admin printed %q, not a new key", out)
	}

	// The list: both ids, no secret, in text and JSON.
	text := mustCLI(t, ctx, p.url, second, "keys", "list", "--admin")
	var listed struct{ Keys []map[string]any }
	raw := mustCLI(t, ctx, p.url, second, "keys", "list", "--admin", "-o", "json")
	decodeJSON(t, raw, &listed)
	var ids []string
	for _, k := range listed.Keys {
		ids = append(ids, k["key_id"].(string))
		if _, has := k["key"]; has || k["role"] != "admin" {
			t.Errorf("listed admin key %v: want role admin and no secret", k)
		}
	}
	if len(ids) != 2 || ids[0] != genID || ids[1] != secondID || !strings.Contains(text, genID) || !strings.Contains(text, secondID) {
		t.Errorf("keys list --admin: %v, want [%s %s]\n%s", ids, genID, secondID, text)
	}
	for _, key := range []string{genKey, second} {
		id, _ := apikey.ParseID(key)
		s := key[len("ck_")+len(id)+1:] // the secret part
		if strings.Contains(text, s) || strings.Contains(raw, s) {
			t.Error("keys list --admin shows a secret")
		}
	}

	// Shell completion offers the admin keys' ids.
	if res := cli(t, ctx, p.url, second, "__complete", "keys", "revoke", "--admin", ""); !strings.Contains(res.stdout, genID+"\t") ||
		!strings.Contains(res.stdout, secondID+"\tops") {
		t.Errorf("completing keys revoke --admin: %q", res.stdout)
	}

	// A key cannot revoke itself: refused, and it still works.
	res := cli(t, ctx, p.url, genKey, "keys", "revoke", "--admin", genID)
	if res.code != 1 || !strings.Contains(res.stderr, "is the key this command uses") || !strings.Contains(res.stderr, "409 key_in_use") {
		t.Errorf("revoking the key in use: exit %d, stderr %q", res.code, res.stderr)
	}
	if _, err := client.New(p.url, client.WithAPIKey(genKey)).ListTenants(ctx); err != nil {
		t.Fatalf("the generated key after its refused revocation: %v", err)
	}

	// --admin and --tenant on the command line do not go together; a
	// CLOACINA_TENANT in the environment does not stop --admin.
	if res := cli(t, ctx, p.url, second, "keys", "list", "--admin", "--tenant", "acme"); res.code != 2 || !strings.Contains(res.stderr, "--admin and --tenant do not go together") {
		t.Errorf("--admin --tenant: exit %d, stderr %q", res.code, res.stderr)
	}

	// The command serve prints, run with the second key.
	args := strings.Fields(revokeAdminCommand(genID))[1:]
	out = mustCLI(t, ctx, p.url, second, args...)
	if out != "admin key "+genID+" deleted\n" {
		t.Errorf("%s: %q", revokeAdminCommand(genID), out)
	}
	if _, err := client.New(p.url, client.WithAPIKey(genKey)).ListTenants(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("the revoked generated key: %v, want 401", err)
	}
	res = cli(t, ctx, p.url, genKey, "tenant", "list")
	if res.code != 1 || !strings.Contains(res.stderr, "401") {
		t.Errorf("tenant list with the revoked key: exit %d, stderr %q", res.code, res.stderr)
	}
	var after struct{ Keys []client.Key }
	if err := json.Unmarshal([]byte(mustCLI(t, ctx, p.url, second, "keys", "list", "--admin", "-o", "json")), &after); err != nil ||
		len(after.Keys) != 1 || after.Keys[0].KeyID != secondID {
		t.Errorf("after the revocation: %+v (%v), want only %s", after.Keys, err, secondID)
	}
}
