package cmd

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"regctl/pkg/reconfigure"
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
func keyName(k reconfigure.SecretKey) string {
	return strings.ReplaceAll(strings.Join(k.Path, "."), ".*", "[0]")
}

// secretSettings is a settings file that sets k to the TOML value val
// (extra follows it in the same table), and the line that sets k.
func secretSettings(t *testing.T, k reconfigure.SecretKey, val, extra string) (string, int) {
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
func inShape(t *testing.T, k reconfigure.SecretKey, scalar string) string {
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
	keys := reconfigure.SecretKeys()
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
