package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func basic(user, pass string) http.Header {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header
}

func TestHTPasswd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	content := "# users\n\nalice:" + bcryptHash(t, "s3cret") + "\n  bob:" + bcryptHash(t, "hunter2") + "  \n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl, err := NewHTPasswd(HTPasswdOptions{Realm: "Registry Realm", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, ctl)
	const www = `Basic realm="Registry Realm"`
	cases := []struct {
		name   string
		method string
		path   string
		hdr    http.Header
		status int
		www    string
		code   string
		cause  error
	}{
		{"right", "GET", "/v2/group/app/manifests/latest", basic("alice", "s3cret"), 200, "", "subject=alice", nil},
		{"right, every access", "DELETE", "/v2/group/app/manifests/latest", basic("bob", "hunter2"), 200, "", "subject=bob", nil},
		{"right, catalog", "GET", "/v2/_catalog", basic("bob", "hunter2"), 200, "", "subject=bob", nil},
		{"wrong password", "GET", "/v2/group/app/manifests/latest", basic("alice", "S3cret"), 401, www, CodeUnauthorized, ErrBadCredentials},
		{"unknown user", "GET", "/v2/group/app/manifests/latest", basic("mallory", "s3cret"), 401, www, CodeUnauthorized, ErrBadCredentials},
		{"missing", "GET", "/v2/group/app/manifests/latest", nil, 401, www, CodeUnauthorized, ErrNoCredentials},
		{"missing, base", "GET", "/v2/", nil, 401, www, CodeUnauthorized, ErrNoCredentials},
		{"bearer instead", "GET", "/v2/", bearerHeader("x.y.z"), 401, www, CodeUnauthorized, ErrNoCredentials},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := do(t, srv, c.method, c.path, c.hdr)
			if got.status != c.status || got.www != c.www || got.code != c.code {
				t.Errorf("got %d %q %q\nwant %d %q %q", got.status, got.www, got.code, c.status, c.www, c.code)
			}
			req := httptest.NewRequest(c.method, c.path, nil)
			for k, vs := range c.hdr {
				req.Header[k] = vs
			}
			g, err := ctl.Authorize(req, nil)
			var ae *Error
			if c.cause == nil {
				if err != nil || !g.All {
					t.Errorf("Authorize: %+v, %v", g, err)
				}
			} else if !errors.As(err, &ae) || !errors.Is(err, c.cause) {
				t.Errorf("Authorize: got %v, want cause %v", err, c.cause)
			}
		})
	}

	// A user added to the file works without a restart.
	content += "carol:" + bcryptHash(t, "pw") + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := do(t, srv, "GET", "/v2/", basic("carol", "pw")); got.status != 200 {
		t.Errorf("after adding carol: %+v", got)
	}
	// A file that no longer loads fails the request (500), never passes it.
	if err := os.WriteFile(path, []byte(content+"dave:plain\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	_ = os.Chtimes(path, future, future)
	req := httptest.NewRequest("GET", "/v2/", nil)
	req.SetBasicAuth("alice", "s3cret")
	if _, err := ctl.Authorize(req, nil); err == nil || errors.As(err, new(*Error)) || !strings.Contains(err.Error(), "auth.htpasswd.path: ") {
		t.Errorf("broken file: got %v, want a plain error naming auth.htpasswd.path", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.Authorize(req, nil); err == nil || errors.As(err, new(*Error)) {
		t.Errorf("removed file: got %v, want a plain error", err)
	}
}

func TestHTPasswdRejectsNonBcrypt(t *testing.T) {
	dir := t.TempDir()
	good := "alice:" + bcryptHash(t, "pw") + "\n"
	// withCost is a valid bcrypt hash relabelled with another cost:
	// making a real one above the cap would take seconds.
	withCost := func(cost string) string { return "$2y$" + cost + strings.TrimPrefix(bcryptHash(t, "pw"), "$2a$04") }
	cases := []struct{ name, line, want string }{
		{"apr1", "bob:$apr1$rF2XlN6x$3VSmdAuIQ3XmCE6VQ8Bl4/", `:2: user "bob": the password hash is Apache MD5 ($apr1$, htpasswd -m), but only bcrypt is supported: recreate it with htpasswd -B`},
		{"sha1", "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1 ({SHA}, htpasswd -s)"},
		{"crypt", "bob:rqXexS6ZhobKA", "DES crypt (htpasswd -d) or plain text"},
		{"sha512-crypt", "bob:$6$salt$hash", "SHA-crypt ($6$)"},
		{"plain", "bob:password", "not bcrypt (plain text?)"},
		{"bad bcrypt", "bob:$2y$99$abc", "a malformed bcrypt hash"},
		{"no colon", "bob", ":2: want USER:BCRYPT-HASH"},
		{"empty hash", "bob:", ":2: want USER:BCRYPT-HASH"},
		{"duplicate", "alice:" + bcryptHash(t, "x"), `:2: user "alice" is already defined on line 1`},
		{"cost above the cap", "bob:" + withCost("15"), `:2: user "bob": bcrypt cost 15 is above 14, the most regctl accepts (every failed login costs what the costliest entry costs): recreate it with htpasswd -B -C 14 or lower`},
		{"bcrypt's highest cost", "bob:" + withCost("31"), `:2: user "bob": bcrypt cost 31 is above 14`},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, []byte(good+c.line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := NewHTPasswd(HTPasswdOptions{Realm: "r", Path: path})
		if err == nil || !strings.HasPrefix(err.Error(), "auth.htpasswd.path: "+path) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want one line naming the key, the line and %q", c.name, err, c.want)
		}
	}
	// The cap itself is accepted (parsed only: the dummies at cost 14
	// would take seconds to make).
	capped := filepath.Join(dir, "capped")
	if err := os.WriteFile(capped, []byte(good+"bob:"+withCost("14")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(capped)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, maxCost, err := parseHTPasswd(f, capped); err != nil || maxCost != MaxHTPasswdCost {
		t.Errorf("an entry at the cap: max cost %d, %v", maxCost, err)
	}

	// bcrypt's variants load.
	var lines []string
	for i, v := range []string{"$2a$", "$2b$", "$2y$"} {
		lines = append(lines, string(rune('a'+i))+":"+v+strings.TrimPrefix(bcryptHash(t, "pw"), "$2a$"))
	}
	path := filepath.Join(dir, "variants")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl, err := NewHTPasswd(HTPasswdOptions{Realm: "r", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/v2/", nil)
	req.SetBasicAuth("c", "pw")
	if _, err := ctl.Authorize(req, nil); err != nil {
		t.Errorf("$2y$ user: %v", err)
	}

	for _, c := range []struct {
		opts HTPasswdOptions
		want string
	}{
		{HTPasswdOptions{Path: path}, "auth.htpasswd.realm: must be set"},
		{HTPasswdOptions{Realm: "r"}, "auth.htpasswd.path: must be set"},
		{HTPasswdOptions{Realm: "r", Path: filepath.Join(dir, "nope")}, "auth.htpasswd.path: open " + filepath.Join(dir, "nope") + ": no such file or directory"},
	} {
		if _, err := NewHTPasswd(c.opts); err == nil || err.Error() != c.want {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}

// BenchmarkHTPasswdFailedLogin times a refused login of an unknown user,
// of users with cheaper hashes (bob at cost 4, carol at 9) and of one at
// the file's highest cost (alice, 10). They should take the same time; the tests check the
// mechanism, this only measures it:
//
//	go test -run '^$' -bench HTPasswdFailedLogin -benchtime 20x ./pkg/auth
func BenchmarkHTPasswdFailedLogin(b *testing.B) {
	path := filepath.Join(b.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(htpasswdLine(b, "alice", "right", 10)+htpasswdLine(b, "bob", "right", bcrypt.MinCost)+htpasswdLine(b, "carol", "right", 9)), 0o600); err != nil {
		b.Fatal(err)
	}
	ctl, err := NewHTPasswd(HTPasswdOptions{Realm: "r", Path: path})
	if err != nil {
		b.Fatal(err)
	}
	for _, user := range []string{"unknown", "bob", "carol", "alice"} {
		b.Run(user, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/v2/", nil)
			req.SetBasicAuth(user, "wrong")
			for b.Loop() {
				if _, err := ctl.Authorize(req, nil); !errors.Is(err, ErrBadCredentials) {
					b.Fatal(err)
				}
			}
		})
	}
}

// htpasswdLine is a file line for user, with password hashed at cost.
func htpasswdLine(tb testing.TB, user, password string, cost int) string {
	tb.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		tb.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

// TestHTPasswdFailedLoginsCostTheMostExpensiveEntry checks the mechanism
// that makes every failed login take as long as the file's most
// expensive entry: the bcrypt work each login does, counted from the
// costs of the hashes it compares (a comparison at cost k does 2^k
// rounds). An unknown user, a user with a cheaper hash and the most
// expensive user all do 2^max on a wrong password; only a right
// password may finish early.
func TestHTPasswdFailedLoginsCostTheMostExpensiveEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	file := htpasswdLine(t, "alice", "a-pw", 7) + htpasswdLine(t, "bob", "b-pw", bcrypt.MinCost) + htpasswdLine(t, "carol", "c-pw", 6)
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl, err := NewHTPasswd(HTPasswdOptions{Realm: "r", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	var work int // rounds compared in the current login
	ctl.compare = func(hash, password []byte) error {
		cost, err := bcrypt.Cost(hash)
		if err != nil {
			t.Fatalf("compared against a bad hash %q: %v", hash, err)
		}
		work += 1 << cost
		return bcrypt.CompareHashAndPassword(hash, password)
	}
	login := func(user, pass string) (bool, int) {
		work = 0
		req := httptest.NewRequest("GET", "/v2/", nil)
		req.SetBasicAuth(user, pass)
		_, err := ctl.Authorize(req, nil)
		if err != nil && !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("%s: %v", user, err)
		}
		return err == nil, work
	}
	type loginCase struct {
		user, pass string
		ok         bool
		work       int
	}
	check := func(maxCost int, cases []loginCase) {
		t.Helper()
		for _, c := range cases {
			ok, work := login(c.user, c.pass)
			if ok != c.ok || work != c.work {
				t.Errorf("max cost %d, %s with %q: ok %v after %d rounds, want ok %v after %d", maxCost, c.user, c.pass, ok, work, c.ok, c.work)
			}
		}
	}
	check(7, []loginCase{
		{"mallory", "a-pw", false, 1 << 7},
		{"bob", "wrong", false, 1 << 7},
		{"carol", "wrong", false, 1 << 7},
		{"alice", "wrong", false, 1 << 7},
		{"alice", "a-pw", true, 1 << 7},
		{"bob", "b-pw", true, 1 << bcrypt.MinCost}, // a right password may be fast
	})

	// The dummies follow the file when it changes: a costlier entry
	// raises every failed login to its cost, and removing it lowers
	// them again. (SIGHUP builds a new controller, as NewHTPasswd here.)
	for _, step := range []struct {
		content string
		max     int
	}{
		{file + htpasswdLine(t, "dave", "d-pw", 8), 8},
		{file, 7},
	} {
		if err := os.WriteFile(path, []byte(step.content), 0o600); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Duration(step.max) * time.Hour)
		if err := os.Chtimes(path, later, later); err != nil {
			t.Fatal(err)
		}
		check(step.max, []loginCase{
			{"mallory", "x", false, 1 << step.max},
			{"bob", "wrong", false, 1 << step.max},
			{"alice", "wrong", false, 1 << step.max},
		})
	}
}
