package settings

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// looksSecret matches key names that usually hold credentials.
var looksSecret = regexp.MustCompile(`(?i)pass|secret|token|key|cred|auth|private`)

// notSecret are the keys whose names look secret but whose values are not,
// each with the reason.
var notSecret = map[string]string{
	"registry.token_realm":           "a public URL",
	"registry.storage.s3.keyid":      "the id of a KMS key, not key material",
	"migration.s3.keyid":             "the id of a KMS key, not key material",
	"registry.storage.s3.v4auth":     "a boolean switch",
	"migration.s3.v4auth":            "a boolean switch",
	"gitlab_rails.registry_key_path": "the path of the key file, not the key",
	"registry.redis.tls.key":         "the path of the client key file, not the key",
}

// A key whose name looks secret is marked secret, or listed in notSecret
// with a reason: the schema cannot silently forget one.
func TestSecretLookingKeysAreMarkedSecret(t *testing.T) {
	seen := map[string]bool{}
	var walk func(n *Node, path []string)
	walk = func(n *Node, path []string) {
		key := strings.Join(path, ".")
		seen[key] = true
		switch {
		case n.secret:
			if _, listed := notSecret[key]; listed {
				t.Errorf("%s is marked secret and also listed as not secret", key)
			}
			return
		case n.kind == KTableList:
			walk(n.elem, append(path, "*"))
			return
		case n.kind == KTable && n.fields != nil:
			for _, k := range slices.Sorted(maps.Keys(n.fields)) {
				walk(n.fields[k], append(path, k))
			}
			return
		case n.kind == KTable:
			t.Errorf("%s: a free-form table must be secret: its keys are unknown", key)
		}
		if _, listed := notSecret[key]; !listed && len(path) > 0 && looksSecret.MatchString(path[len(path)-1]) {
			t.Errorf("%s looks secret but the schema does not mark it secret: mark it, or list it in notSecret with the reason", key)
		}
	}
	walk(schema(), nil)
	for key := range notSecret {
		if !seen[key] || !looksSecret.MatchString(key[strings.LastIndex(key, ".")+1:]) {
			t.Errorf("notSecret lists %s, which is no schema key whose name looks secret", key)
		}
	}
}
