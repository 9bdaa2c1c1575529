package auth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// HTPasswdOptions configure basic auth: config.yml's auth.htpasswd.
type HTPasswdOptions struct {
	Realm string
	Path  string // an htpasswd file of bcrypt entries (htpasswd -B)
}

// HTPasswdController checks basic credentials against an htpasswd file. A
// valid user is granted every access, as in Distribution. The file is read
// again when its modification time or size changes, so users can be added
// without a restart; it is safe for concurrent use.
type HTPasswdController struct {
	opts HTPasswdOptions

	mu      sync.Mutex
	modTime time.Time
	size    int64
	users   map[string][]byte
	// dummy is compared against for unknown users, so that a wrong user
	// name costs as much time as a wrong password and names cannot be
	// probed by timing.
	dummy []byte
}

var _ Controller = (*HTPasswdController)(nil)

// NewHTPasswd reads the file; every problem is one line naming the key.
func NewHTPasswd(opts HTPasswdOptions) (*HTPasswdController, error) {
	if opts.Realm == "" {
		return nil, errors.New("auth.htpasswd.realm: must be set")
	}
	if opts.Path == "" {
		return nil, errors.New("auth.htpasswd.path: must be set")
	}
	c := &HTPasswdController{opts: opts}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Authorize implements Controller.
func (c *HTPasswdController) Authorize(r *http.Request, need []Access) (*Grant, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return nil, c.refuse(need, "authentication required", ErrNoCredentials)
	}
	users, dummy, err := c.current()
	if err != nil {
		return nil, err
	}
	hash, known := users[user]
	if !known {
		_ = bcrypt.CompareHashAndPassword(dummy, []byte(pass))
		return nil, c.refuse(need, "authentication required: invalid username or password",
			fmt.Errorf("%w: unknown user %q", ErrBadCredentials, user))
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return nil, c.refuse(need, "authentication required: invalid username or password",
			fmt.Errorf("%w: wrong password for %q", ErrBadCredentials, user))
	}
	return &Grant{Subject: user, All: true}, nil
}

func (c *HTPasswdController) refuse(need []Access, msg string, err error) *Error {
	return &Error{
		Status:    http.StatusUnauthorized,
		Code:      CodeUnauthorized,
		Message:   msg,
		Challenge: Challenge{Scheme: "Basic", Realm: c.opts.Realm},
		Need:      need,
		Err:       err,
	}
}

// current returns the users, reloading the file when it changed. A file
// that has become unreadable or invalid is an error (the request fails
// with 500 and the reason is logged) rather than a silent fallback to
// stale users, who may have been removed on purpose.
func (c *HTPasswdController) current() (map[string][]byte, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fi, err := os.Stat(c.opts.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("auth.htpasswd.path: %w", err)
	}
	if !fi.ModTime().Equal(c.modTime) || fi.Size() != c.size {
		if err := c.reloadLocked(); err != nil {
			return nil, nil, err
		}
	}
	return c.users, c.dummy, nil
}

func (c *HTPasswdController) reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reloadLocked()
}

func (c *HTPasswdController) reloadLocked() error {
	f, err := os.Open(c.opts.Path)
	if err != nil {
		return fmt.Errorf("auth.htpasswd.path: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("auth.htpasswd.path: %w", err)
	}
	users, maxCost, err := parseHTPasswd(f, c.opts.Path)
	if err != nil {
		return fmt.Errorf("auth.htpasswd.path: %w", err)
	}
	if c.dummy == nil || costOf(c.dummy) != maxCost {
		// Random bytes: the dummy must match no password at all.
		c.dummy, err = bcrypt.GenerateFromPassword([]byte(rand.Text()), maxCost)
		if err != nil {
			return fmt.Errorf("auth.htpasswd.path: %w", err)
		}
	}
	c.users, c.modTime, c.size = users, fi.ModTime(), fi.Size()
	return nil
}

func costOf(hash []byte) int {
	n, err := bcrypt.Cost(hash)
	if err != nil {
		return -1
	}
	return n
}

// parseHTPasswd reads "user:hash" lines; blank lines and # comments are
// skipped. Only bcrypt hashes are accepted: htpasswd's other formats (MD5,
// SHA-1, crypt, plain) are weak, and refusing them at load says which line
// to fix instead of failing every login of that user. It also returns the
// highest bcrypt cost seen, for the timing dummy.
func parseHTPasswd(f *os.File, path string) (map[string][]byte, int, error) {
	users := map[string][]byte{}
	lineOf := map[string]int{}
	maxCost := bcrypt.MinCost
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || hash == "" {
			return nil, 0, fmt.Errorf("%s:%d: want USER:BCRYPT-HASH (make one with htpasswd -B)", path, n)
		}
		if prev, dup := lineOf[user]; dup {
			return nil, 0, fmt.Errorf("%s:%d: user %q is already defined on line %d", path, n, user, prev)
		}
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil || !bytes.HasPrefix([]byte(hash), []byte("$2")) {
			return nil, 0, fmt.Errorf("%s:%d: user %q: the password hash is %s, but only bcrypt is supported: recreate it with htpasswd -B", path, n, user, hashKind(hash))
		}
		maxCost = max(maxCost, cost)
		users[user], lineOf[user] = []byte(hash), n
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return users, maxCost, nil
}

// hashKind names an htpasswd hash format for the error message.
func hashKind(h string) string {
	switch {
	case strings.HasPrefix(h, "$apr1$"):
		return "Apache MD5 ($apr1$, htpasswd -m)"
	case strings.HasPrefix(h, "{SHA}"):
		return "SHA-1 ({SHA}, htpasswd -s)"
	case strings.HasPrefix(h, "$1$"):
		return "MD5-crypt ($1$)"
	case strings.HasPrefix(h, "$5$"), strings.HasPrefix(h, "$6$"):
		return "SHA-crypt (" + h[:3] + ")"
	case strings.HasPrefix(h, "$2"):
		return "a malformed bcrypt hash"
	case len(h) == 13:
		return "DES crypt (htpasswd -d) or plain text"
	}
	return "not bcrypt (plain text?)"
}
