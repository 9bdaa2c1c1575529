package cmd

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"regctl/pkg/certs"
	"regctl/pkg/settings"
)

// The tests here run over every key the schema marks secret, so that a
// key marked later is covered without a new case.

// tableNeeds are the other keys a table must set to be valid.
var tableNeeds = map[string]string{
	"registry.storage.s3":    "bucket = \"b\"\nregion = \"r\"\n",
	"migration.s3":           "bucket = \"b\"\nregion = \"r\"\n",
	"registry.notifications": "name = \"hook\"\nurl = \"https://gitlab.example.com/hook\"\n",
}

// keyName is a secret key as messages name it: registry.notifications[0].headers.
func keyName(k settings.SecretKey) string {
	return strings.ReplaceAll(strings.Join(k.Path, "."), ".*", "[0]")
}

// secretSettings is a settings file that sets k to the TOML value val
// (extra follows it in the same table), and the line that sets k.
func secretSettings(t *testing.T, k settings.SecretKey, val, extra string) (string, int) {
	t.Helper()
	table := strings.Join(k.Path[:len(k.Path)-1], ".")
	var b strings.Builder
	b.WriteString("data_dir = \"data\"\n")
	switch {
	case strings.Contains(strings.TrimSuffix(table, ".*"), "*"):
		t.Fatalf("%s: no settings for a key this deep in arrays of tables", keyName(k))
	case strings.HasSuffix(table, ".*"):
		table = strings.TrimSuffix(table, ".*")
		fmt.Fprintf(&b, "[[%s]]\n", table)
	case table != "":
		fmt.Fprintf(&b, "[%s]\n", table)
	}
	b.WriteString(tableNeeds[table])
	line := strings.Count(b.String(), "\n") + 1
	fmt.Fprintf(&b, "%s = %s\n%s", k.Path[len(k.Path)-1], val, extra)
	return b.String(), line
}

// inShape puts a TOML scalar where k wants one: the key itself, or a
// value in its table.
func inShape(t *testing.T, k settings.SecretKey, scalar string) string {
	t.Helper()
	switch k.Shape {
	case "a string":
		return scalar
	case "a table of string arrays":
		return "{ X-Api-Key = [" + scalar + "] }"
	case "a table":
		return "{ accountkey = " + scalar + " }"
	}
	t.Fatalf("%s: no value for a key holding %s", keyName(k), k.Shape)
	return ""
}

// letters keeps the letters of s: a value TOML cannot read unquoted as
// anything but a mistake.
func letters(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) {
			return r
		}
		return -1
	}, s)
}

// A secret key with a wrong-typed or unreadable value: the problem names
// the key and its line, never the value, in text and in JSON.
func TestReconfigureInvalidSecretNotShown(t *testing.T) {
	t.Parallel()
	keys := settings.SecretKeys()
	if len(keys) < 10 {
		t.Fatalf("only %d secret keys: %v", len(keys), keys)
	}
	for i, k := range keys {
		key := keyName(k)
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			wrong := strconv.Itoa(55554444 + i)
			unquoted := "Unquoted" + letters(key)
			for _, c := range []struct{ what, val, want, hidden string }{
				{"wrong type", wrong, fmt.Sprintf("%s: must be %s, not an integer", key, k.Shape), wrong},
				{"not TOML", inShape(t, k, unquoted), k.Path[len(k.Path)-1], unquoted},
			} {
				text, line := secretSettings(t, k, c.val, "")
				_, settings := newSettings(t, text)
				for _, output := range []string{"text", "json"} {
					r := mustCode(t, 2, "reconfigure", "--settings", settings, "-o", output)
					what := fmt.Sprintf("%s, %s output", c.what, output)
					mustContain(t, what, r.stdout+r.stderr, fmt.Sprintf("%s:%d: ", settings, line), c.want)
					mustNotContain(t, what, r.stdout+r.stderr, c.hidden)
				}
			}
		})
	}
}

// URLs in problems keep their host and path but lose their userinfo and
// query: `"https://user:xxxxx@host/?token=xxxxx" must not have a query`.
func TestReconfigureInvalidURLCredentialsNotShown(t *testing.T) {
	t.Parallel()
	_, settings := newSettings(t, `data_dir = "data"
external_url = "https://user:PASSWORD1@gitlab.example.com/?token=TOKEN1"
[registry]
token_realm = "http://user:PASS WORD2@gitlab.example.com/"
[gitlab_rails]
registry_host = "user:PASSWORD3@registry.example.com"
[[registry.notifications]]
name = "hook"
url = "ftp://TOKEN4@gitlab.example.com/hook?key=TOKEN5"
`)
	r := mustCode(t, 2, "reconfigure", "--settings", settings)
	mustContain(t, "stderr", r.stderr,
		settings+`:2: external_url: "https://user:xxxxx@gitlab.example.com/?token=xxxxx" must not have a query`,
		settings+`:4: registry.token_realm: "http://user:xxxxx@gitlab.example.com/" is not a URL: net/url: invalid userinfo`,
		settings+`:6: gitlab_rails.registry_host: "user:xxxxx@registry.example.com" must be a host name only`,
		settings+`:9: registry.notifications[0].url: "ftp://xxxxx@gitlab.example.com/hook?key=xxxxx" must start with http://`)
	mustNotContain(t, "stderr", r.stderr, "PASSWORD", "WORD2", "TOKEN")
}

// testPairs are two token-signing pairs for the internal_key case.
var testPairs = sync.OnceValues(func() ([2][2]string, error) {
	var out [2][2]string
	for i := range out {
		key, cert, err := certs.GenerateKeyPairBits(2048, time.Now())
		if err != nil {
			return out, err
		}
		out[i] = [2]string{string(key), string(cert)}
	}
	return out, nil
})

// secretChange is one secret setting changed from old to new.
type secretChange struct {
	name     string
	settings func(version int) string // version 0 is old, 1 is new
	parts    [2][]string              // what of each version must never be shown
}

// secretChanges are a change of every key the schema marks secret, to a
// one-line and to a multi-line value (which YAML renders as a block
// scalar), and a change of the password in a notification URL.
func secretChanges(t *testing.T) []secretChange {
	var out []secretChange
	for _, k := range settings.SecretKeys() {
		key := keyName(k)
		if key == "registry.internal_key" {
			pairs, err := testPairs()
			if err != nil {
				t.Fatal(err)
			}
			c := secretChange{name: key, settings: func(v int) string {
				s, _ := secretSettings(t, k, strconv.Quote(pairs[v][0]), "internal_certificate = "+strconv.Quote(pairs[v][1])+"\n")
				return s
			}}
			for v := range pairs {
				c.parts[v] = strings.Split(pairs[v][0], "\n")[1:4]
			}
			out = append(out, c)
			continue
		}
		for _, lines := range []int{1, 2} {
			c := secretChange{name: fmt.Sprintf("%s/%d lines", key, lines)}
			for v, version := range []string{"Old", "New"} {
				for l := range lines {
					c.parts[v] = append(c.parts[v], fmt.Sprintf("S3cr3t%s%sLine%d", version, letters(key), l))
				}
			}
			c.settings = func(v int) string {
				s, _ := secretSettings(t, k, inShape(t, k, strconv.Quote(strings.Join(c.parts[v], "\n"))), "")
				return s
			}
			out = append(out, c)
		}
	}
	hook := secretChange{name: "notification URL userinfo", parts: [2][]string{{"PaSsWoRdOld"}, {"PaSsWoRdNew"}}}
	hook.settings = func(v int) string {
		return fmt.Sprintf("data_dir = \"data\"\n[[registry.notifications]]\nname = \"hook\"\nurl = \"https://user:%s@gitlab.example.com/hook\"\n", hook.parts[v][0])
	}
	return append(out, hook)
}

// A changed secret never shows in reconfigure --dry-run, text or JSON,
// neither its old value nor its new one; the files written keep the real
// values.
func TestReconfigureDryRunHidesEverySecret(t *testing.T) {
	t.Parallel()
	for _, c := range secretChanges(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir, settings := withSecrets(t, c.settings(0))
			mustCode(t, 0, "reconfigure", "--settings", settings)
			// Keys that reach no file (migration.s3) have nothing to hide,
			// but are checked all the same.
			rendered := filesContain(t, dir, c.parts[0])
			writeFile(t, settings, c.settings(1), 0o644)

			for _, output := range []string{"text", "json"} {
				r := mustCode(t, 0, "reconfigure", "--dry-run", "--settings", settings, "-o", output)
				for v := range c.parts {
					mustNotContain(t, output+" dry run", r.stdout+r.stderr, c.parts[v]...)
				}
				if rendered {
					mustContain(t, output+" dry run", r.stdout, "updated")
				}
			}
			mustCode(t, 0, "reconfigure", "--settings", settings)
			if rendered && !filesContain(t, dir, c.parts[1]) {
				t.Error("the files written do not hold the new value")
			}
		})
	}
}

// filesContain reports whether the files reconfigure owns in dir hold
// every one of parts.
func filesContain(t *testing.T, dir string, parts []string) bool {
	t.Helper()
	var all strings.Builder
	for _, p := range renderedFiles(dir) {
		all.WriteString(readFile(t, p))
	}
	for _, p := range parts {
		if !strings.Contains(all.String(), p) {
			return false
		}
	}
	return true
}
