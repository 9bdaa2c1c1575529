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

// MaxHTPasswdCost is the highest bcrypt cost an htpasswd entry may
// have; a file with a costlier entry is refused. Every failed login
// costs what the file's most expensive entry costs, whoever the user, so
// the cap bounds the CPU one unauthenticated request can take: cost 14
// is about 1 s of a core, and each step doubles it (31, bcrypt's
// highest, is a day and a half). Common tools make 5 (htpasswd -B) to
// 12 (Ruby's bcrypt), Go and Python's bcrypt 10.
const MaxHTPasswdCost = 14

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
	// compare is bcrypt.CompareHashAndPassword; tests record through
	// it which comparisons a login makes.
	compare func(hash, password []byte) error

	mu      sync.Mutex
	modTime time.Time
	size    int64
	users   map[string][]byte
	// dummies[k] is a bcrypt hash at cost k of a random password, for
	// every cost k from bcrypt.MinCost to the file's highest (the last
	// one); lower indexes are nil. Authorize compares against them so
	// that every failed login costs the same (see there).
	dummies [][]byte
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
	c := &HTPasswdController{opts: opts, compare: bcrypt.CompareHashAndPassword}
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
	users, dummies, err := c.current()
	if err != nil {
		return nil, err
	}
	maxCost := len(dummies) - 1
	hash, known := users[user]
	if !known {
		hash = dummies[maxCost]
	}
	if c.compare(hash, []byte(pass)) == nil && known {
		return &Grant{Subject: user, All: true}, nil
	}
	// A failed login costs one comparison at the file's highest cost,
	// whoever the user, so timing tells neither user names nor cheaper
	// entries. bcrypt's work doubles with each cost step: after a
	// comparison at cost k, comparisons at k, k+1, ..., max-1 make up
	// the rest (2^k + 2^k + 2^(k+1) + ... + 2^(max-1) = 2^max).
	for k := costOf(hash); k < maxCost; k++ {
		_ = c.compare(dummies[k], []byte(pass))
	}
	if !known {
		return nil, c.refuse(need, "authentication required: invalid username or password",
			fmt.Errorf("%w: unknown user %q", ErrBadCredentials, user))
	}
	return nil, c.refuse(need, "authentication required: invalid username or password",
		fmt.Errorf("%w: wrong password for %q", ErrBadCredentials, user))
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
func (c *HTPasswdController) current() (map[string][]byte, [][]byte, error) {
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
	return c.users, c.dummies, nil
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
	// The dummies are made once per cost and kept across reloads.
	dummies := make([][]byte, maxCost+1)
	for k := bcrypt.MinCost; k <= maxCost; k++ {
		if k < len(c.dummies) {
			dummies[k] = c.dummies[k]
			continue
		}
		// A random password: a dummy must match no password at all.
		if dummies[k], err = bcrypt.GenerateFromPassword([]byte(rand.Text()), k); err != nil {
			return fmt.Errorf("auth.htpasswd.path: %w", err)
		}
	}
	c.users, c.dummies, c.modTime, c.size = users, dummies, fi.ModTime(), fi.Size()
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
// to fix instead of failing every login of that user. So is a cost above
// MaxHTPasswdCost. It also returns the highest bcrypt cost seen, for the
// timing dummies.
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
		if cost > MaxHTPasswdCost {
			return nil, 0, fmt.Errorf("%s:%d: user %q: bcrypt cost %d is above %d, the most regctl accepts (every failed login costs what the costliest entry costs): recreate it with htpasswd -B -C %d or lower", path, n, user, cost, MaxHTPasswdCost, MaxHTPasswdCost)
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
