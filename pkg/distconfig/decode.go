package distconfig

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/textproto"
	"net/url"
	"path/filepath"
	"regctl/internal/redact"
	suggestpkg "regctl/internal/suggest"
	"slices"
	"strconv"
	"strings"
	"time"
)

// decoder walks the tree into a Config. It keeps the first error and
// stops reporting anything after it, so the caller gets exactly one
// problem and no warnings about a file it will not use.
type decoder struct {
	file string
	log  *slog.Logger
	err  *Error
}

// handler decodes the value found at a key path.
type handler func(n *node, path string)

// fields are the keys a map section knows.
type fields map[string]handler

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) fail(n *node, path, format string, args ...any) {
	if d.err != nil {
		return
	}
	d.err = &Error{File: d.file, Line: n.line, Env: n.env, Key: path, Msg: fmt.Sprintf(format, args...)}
}

// where locates a value for a warning.
func (d *decoder) where(n *node) string {
	switch {
	case n.env != "":
		return "environment variable " + n.env
	case n.line > 0:
		return fmt.Sprintf("%s:%d", d.file, n.line)
	}
	return d.file
}

func (d *decoder) warnUnknown(n *node, path string, known []string) {
	if d.err != nil {
		return
	}
	key := path[strings.LastIndex(path, ".")+1:]
	attrs := []any{"key", path, "at", d.where(n)}
	if s := suggest(key, known); s != "" {
		attrs = append(attrs, "did_you_mean", s)
	}
	d.log.Warn("unknown key in registry config ignored", attrs...)
}

// mapping calls the handler of each known key in file order and warns
// about the others. A null section is an absent one.
func (d *decoder) mapping(n *node, path string, fs fields) {
	switch n.kind {
	case kindNull:
		return
	case kindMap:
	default:
		d.fail(n, path, "must be a map, not %s", n.describe())
		return
	}
	for _, e := range n.entries {
		p := join(path, e.key)
		if h, ok := fs[e.key]; ok {
			h(e.val, p)
		} else {
			d.warnUnknown(e.val, p, keysOf(fs))
		}
		if d.err != nil {
			return
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (d *decoder) section(fs fields) handler {
	return func(n *node, path string) { d.mapping(n, path, fs) }
}

// text reads a scalar as a string. Like Distribution, a number or boolean
// in a string key is taken as written. ok is false for null (keep the
// default) and on error.
func (d *decoder) text(n *node, path string) (string, bool) {
	switch n.kind {
	case kindNull:
		return "", false
	case kindScalar:
		return n.text, true
	}
	d.fail(n, path, "must be a single value, not %s", n.describe())
	return "", false
}

func (d *decoder) str(dst *string) handler {
	return func(n *node, path string) {
		if s, ok := d.text(n, path); ok {
			*dst = s
		}
	}
}

// oneOf reads a string that must be one of allowed, case-insensitively,
// stored in lower case (Distribution lower-cases log levels too).
func (d *decoder) oneOf(dst *string, allowed ...string) handler {
	return func(n *node, path string) {
		s, ok := d.text(n, path)
		if !ok {
			return
		}
		s = strings.ToLower(s)
		if !slices.Contains(allowed, s) {
			d.fail(n, path, "must be %s, not %q", orList(allowed), n.text)
			return
		}
		*dst = s
	}
}

func orList(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

func (d *decoder) readBool(n *node, path string) (bool, bool) {
	switch {
	case n.kind == kindNull:
		return false, false
	case n.kind == kindScalar:
		if b, ok := n.val.(bool); ok {
			return b, true
		}
		// The quoted strings omnibus writes for some flags.
		if n.text == "true" || n.text == "false" {
			return n.text == "true", true
		}
	}
	d.fail(n, path, "must be true or false, not %s", n.describe())
	return false, false
}

func (d *decoder) boolean(dst *bool) handler {
	return func(n *node, path string) {
		if b, ok := d.readBool(n, path); ok {
			*dst = b
		}
	}
}

// readInt accepts a YAML integer or a string holding one ("5005").
func (d *decoder) readInt(n *node, path string) (int, bool) {
	switch n.kind {
	case kindNull:
		return 0, false
	case kindScalar:
		if i, ok := n.val.(int); ok {
			return i, true
		}
		if s, ok := n.val.(string); ok {
			if i, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
				return i, true
			}
		}
	}
	d.fail(n, path, "must be a whole number, not %s", n.describe())
	return 0, false
}

// count reads a whole number that must not be negative.
func (d *decoder) count(dst *int) handler {
	return func(n *node, path string) {
		i, ok := d.readInt(n, path)
		if !ok {
			return
		}
		if i < 0 {
			d.fail(n, path, "must not be negative, not %d", i)
			return
		}
		*dst = i
	}
}

// readDuration accepts what Distribution does: a Go duration string or an
// integer number of nanoseconds.
func (d *decoder) readDuration(n *node, path string) (time.Duration, bool) {
	var v time.Duration
	switch {
	case n.kind == kindNull:
		return 0, false
	case n.kind != kindScalar:
		d.fail(n, path, "must be a duration such as 10s or 500ms, not %s", n.describe())
		return 0, false
	default:
		switch x := n.val.(type) {
		case int:
			v = time.Duration(x)
		case string:
			p, err := time.ParseDuration(strings.TrimSpace(x))
			if err != nil {
				d.fail(n, path, "must be a duration such as 10s or 500ms, not %q", n.text)
				return 0, false
			}
			v = p
		default:
			d.fail(n, path, "must be a duration such as 10s or 500ms, not %q", n.text)
			return 0, false
		}
	}
	if v < 0 {
		d.fail(n, path, "must not be negative, not %s", n.text)
		return 0, false
	}
	return v, true
}

func (d *decoder) duration(dst *time.Duration) handler {
	return func(n *node, path string) {
		if v, ok := d.readDuration(n, path); ok {
			*dst = v
		}
	}
}

// stringList reads a list of values; a single value counts as a list of
// one, which is what such a line can only mean.
func (d *decoder) stringList(dst *[]string) handler {
	return func(n *node, path string) {
		switch n.kind {
		case kindNull:
			return
		case kindScalar:
			*dst = []string{n.text}
			return
		case kindMap:
			d.fail(n, path, "must be a list of values, not a map")
			return
		}
		out := make([]string, 0, len(n.items))
		for i, it := range n.items {
			s, ok := d.text(it, fmt.Sprintf("%s[%d]", path, i))
			if d.err != nil {
				return
			}
			if ok {
				out = append(out, s)
			}
		}
		*dst = out
	}
}

// headers reads a map of header name to values. Names are canonicalized
// so that lookups through net/http find them. Secret headers (those sent
// to notification endpoints) are never quoted in messages.
func (d *decoder) headers(dst *map[string][]string, secret bool) handler {
	return func(n *node, path string) {
		if n.kind == kindNull {
			return
		}
		if n.kind != kindMap {
			shown := n.describe()
			if secret {
				shown = n.describeSecret()
			}
			d.fail(n, path, "must be a map of header names to lists of values, not %s", shown)
			return
		}
		h := make(map[string][]string, len(n.entries))
		for _, e := range n.entries {
			var vals []string
			d.stringList(&vals)(e.val, join(path, e.key))
			if d.err != nil {
				return
			}
			k := textproto.CanonicalMIMEHeaderKey(e.key)
			h[k] = append(h[k], vals...)
		}
		*dst = h
	}
}

// root decodes the whole file. Sections are read in file order so the
// first error reported is the first one in the file.
func (d *decoder) root(n *node, c *Config) {
	var sawVersion, sawStorage, sawHTTP bool
	var httpNode *node
	d.mapping(n, "", fields{
		"version": func(n *node, path string) {
			sawVersion = true
			// 0.1 may be written as a number or a string; compare the text
			// so 0.10 is not taken for 0.1.
			if n.kind != kindScalar || n.text != "0.1" {
				d.fail(n, path, "must be 0.1, not %s", n.describe())
			}
		},
		"log": d.section(fields{
			"level":     d.oneOf(&c.Log.Level, "error", "warn", "info", "debug"),
			"formatter": d.oneOf(&c.Log.Formatter, "text", "json", "logfmt", "logstash"),
			"fields":    d.logFields(&c.Log.Fields),
		}),
		"storage": func(n *node, path string) {
			sawStorage = true
			d.storage(n, path, &c.Storage)
		},
		"http": func(n *node, path string) {
			sawHTTP, httpNode = true, n
			d.http(n, path, &c.HTTP)
		},
		"health": d.section(fields{
			"storagedriver": d.section(fields{
				"enabled":   d.boolean(&c.Health.StorageDriver.Enabled),
				"interval":  d.duration(&c.Health.StorageDriver.Interval),
				"threshold": d.count(&c.Health.StorageDriver.Threshold),
			}),
		}),
		"auth": func(n *node, path string) { c.Auth = d.auth(n, path) },
		"notifications": d.section(fields{
			"endpoints": d.endpoints(&c.Notifications.Endpoints),
			"events":    d.section(fields{"includereferences": d.boolean(&c.Notifications.IncludeReferences)}),
			// regctl's own: where the on-disk queues live, how much they hold.
			"queue": d.section(fields{
				"directory": d.str(&c.Notifications.Queue.Directory),
				"maxevents": d.count(&c.Notifications.Queue.MaxEvents),
			}),
		}),
		"redis":      func(n *node, path string) { c.Redis = d.redis(n, path) },
		"regctl":     func(n *node, path string) { d.regctl(n, path, c) },
		"validation": d.section(fields{"disabled": d.boolean(&c.Validation.Disabled)}),
		"compatibility": d.section(fields{
			"schema1": d.section(fields{"enabled": d.boolean(&c.Compatibility.Schema1.Enabled)}),
		}),
	})
	if d.err != nil {
		return
	}
	if c.Health.StorageDriver.Interval == 0 {
		c.Health.StorageDriver.Interval = 10 * time.Second
	}
	top := &node{line: 0}
	switch {
	case !sawVersion:
		d.fail(top, "version", "is missing: the file must start with version: 0.1")
	case !sawStorage:
		d.fail(top, "storage", "is missing: name one storage driver (%s)", orList(drivers))
	case sawHTTP && c.HTTP.Addr == "" && d.err == nil:
		// Distribution would listen on a random port: never what was meant.
		d.fail(httpNode, "http.addr", "is missing: set host:port, such as 127.0.0.1:5000")
	}
}

func (d *decoder) logFields(dst *map[string]string) handler {
	return func(n *node, path string) {
		if n.kind == kindNull {
			return
		}
		if n.kind != kindMap {
			d.fail(n, path, "must be a map of field names to values, not %s", n.describe())
			return
		}
		m := make(map[string]string, len(n.entries))
		for _, e := range n.entries {
			if s, ok := d.text(e.val, join(path, e.key)); ok {
				m[e.key] = s
			}
		}
		*dst = m
	}
}

// drivers are the storage driver sections Distribution knows; regctl runs
// the first three. A storage key outside these and the option sections is
// an unknown key, not a driver, so a typo like "delet" cannot pass for a
// second driver.
var drivers = []string{"filesystem", "s3", "inmemory", "azure", "gcs", "swift", "oss"}

type paramKind uint8

const (
	paramString paramKind = iota
	paramBool
	paramInt
)

// driverParams are the parameters regctl's drivers read, with their types:
// the s3 list is Distribution's s3 driver plus GitLab's pathstyle and
// maxrequestspersecond and regctl's checksum, the same list `regctl
// reconfigure` accepts. Add a parameter here when a driver starts reading
// it. Drivers missing from this table keep whatever parameters they are
// given.
var driverParams = map[string]map[string]paramKind{
	"filesystem": {"rootdirectory": paramString, "maxthreads": paramInt},
	"inmemory":   {},
	"s3": {
		"accesskey": paramString, "secretkey": paramString, "sessiontoken": paramString,
		"bucket": paramString, "region": paramString, "regionendpoint": paramString,
		"pathstyle": paramBool, "forcepathstyle": paramBool,
		"secure": paramBool, "skipverify": paramBool, "v4auth": paramBool,
		"encrypt": paramBool, "keyid": paramString,
		"chunksize": paramInt, "multipartcopychunksize": paramInt,
		"multipartcopymaxconcurrency": paramInt, "multipartcopythresholdsize": paramInt,
		"maxrequestspersecond": paramInt,
		"rootdirectory":        paramString, "storageclass": paramString, "objectacl": paramString,
		"loglevel": paramString, "useragent": paramString,
		"usedualstack": paramBool, "accelerate": paramBool,
		"checksum": paramString,
	},
}

func (d *decoder) storage(n *node, path string, s *Storage) {
	if n.kind != kindMap && n.kind != kindNull {
		d.fail(n, path, "must be a map naming one storage driver (%s), not %s", orList(drivers), n.describe())
		return
	}
	var found []string
	fs := fields{
		"delete":   d.section(fields{"enabled": d.boolean(&s.DeleteEnabled)}),
		"redirect": d.section(fields{"disable": d.boolean(&s.RedirectDisabled)}),
		"cache": d.section(fields{
			"blobdescriptor": func(n *node, path string) {
				// Distribution turns the cache off for an empty value.
				if n.kind == kindScalar && n.text == "" {
					s.Cache.BlobDescriptor = ""
					return
				}
				d.oneOf(&s.Cache.BlobDescriptor, "inmemory", "redis")(n, path)
			},
			"blobdescriptorsize": d.count(&s.Cache.BlobDescriptorSize),
		}),
		"maintenance": d.section(fields{
			"uploadpurging": d.section(fields{
				"enabled":  d.boolean(&s.UploadPurging.Enabled),
				"age":      d.duration(&s.UploadPurging.Age),
				"interval": d.duration(&s.UploadPurging.Interval),
				"dryrun":   d.boolean(&s.UploadPurging.DryRun),
			}),
			"readonly": d.section(fields{"enabled": d.boolean(&s.ReadOnly)}),
		}),
		"tag": d.section(fields{"concurrencylimit": d.count(&s.TagConcurrencyLimit)}),
	}
	for _, name := range drivers {
		fs[name] = func(v *node, p string) {
			found = append(found, name)
			if len(found) > 1 {
				d.fail(v, path, "names two storage drivers, %s and %s: keep exactly one", found[0], name)
				return
			}
			s.Driver = name
			s.Params = d.driverParams(v, p, name)
		}
	}
	d.mapping(n, path, fs)
	if d.err != nil {
		return
	}
	if len(found) == 0 {
		d.fail(n, path, "names no storage driver: add one of %s", orList(drivers))
		return
	}
	up := s.UploadPurging
	if up.Enabled && (up.Age <= 0 || up.Interval <= 0) {
		d.fail(n, join(path, "maintenance.uploadpurging"), "age and interval must be more than 0 while upload purging is enabled")
		return
	}
	if root, _ := s.Params["rootdirectory"].(string); s.Driver == "filesystem" && root != "" && !filepath.IsAbs(root) {
		d.log.Warn("storage.filesystem.rootdirectory is relative: it resolves against the working directory, as in Distribution",
			"rootdirectory", root, "at", d.where(n.get("filesystem").val))
	}
}

// driverParams reads a driver's parameter section.
func (d *decoder) driverParams(n *node, path, driver string) map[string]any {
	if n.kind != kindMap && n.kind != kindNull {
		// A scalar here may be credentials (an azure connection string);
		// only filesystem takes none, and there it is likely the root.
		shown := n.describeSecret()
		if driver == "filesystem" {
			shown = n.describe()
		}
		d.fail(n, path, "must be a map of driver parameters, not %s", shown)
		return map[string]any{}
	}
	if known, ok := driverParams[driver]; ok {
		return d.typedMap(n, path, known, "a map of driver parameters")
	}
	params, _ := toAny(n).(map[string]any)
	if params == nil {
		params = map[string]any{}
	}
	return params
}

// typedMap reads a map whose keys and value types are known: unknown keys
// are warned about and dropped, the others stored with their Go type.
func (d *decoder) typedMap(n *node, path string, known map[string]paramKind, want string) map[string]any {
	out := map[string]any{}
	switch n.kind {
	case kindNull:
		return out
	case kindMap:
	default:
		d.fail(n, path, "must be %s, not %s", want, n.describe())
		return out
	}
	for _, e := range n.entries {
		p := join(path, e.key)
		kind, ok := known[e.key]
		if !ok {
			d.warnUnknown(e.val, p, keysOf(known))
			continue
		}
		if e.val.kind == kindNull {
			continue
		}
		switch kind {
		case paramString:
			if s, ok := d.text(e.val, p); ok {
				out[e.key] = s
			}
		case paramBool:
			if b, ok := d.readBool(e.val, p); ok {
				out[e.key] = b
			}
		case paramInt:
			if i, ok := d.readInt(e.val, p); ok {
				out[e.key] = i
			}
		}
		if d.err != nil {
			return out
		}
	}
	return out
}

func (d *decoder) http(n *node, path string, h *HTTP) {
	d.mapping(n, path, fields{
		"addr":         d.str(&h.Addr),
		"net":          d.oneOf(&h.Net, "tcp", "unix"),
		"secret":       d.str(&h.Secret),
		"relativeurls": d.boolean(&h.RelativeURLs),
		"headers":      d.headers(&h.Headers, false),
		"draintimeout": d.duration(&h.DrainTimeout),
		"tls": func(n *node, path string) {
			d.mapping(n, path, fields{
				"certificate": d.str(&h.TLS.Certificate),
				"key":         d.str(&h.TLS.Key),
				"clientcas":   d.stringList(&h.TLS.ClientCAs),
				"minimumtls":  d.oneOf(&h.TLS.MinimumTLS, "tls1.0", "tls1.1", "tls1.2", "tls1.3"),
			})
			switch t := h.TLS; {
			case d.err != nil:
			case t.Certificate != "" && t.Key == "":
				d.fail(n, path, "certificate is set but key is not: set both, or neither to serve plain HTTP")
			case t.Key != "" && t.Certificate == "":
				d.fail(n, path, "key is set but certificate is not: set both, or neither to serve plain HTTP")
			}
		},
		"debug": func(n *node, path string) {
			d.mapping(n, path, fields{
				"addr": func(n *node, path string) {
					d.str(&h.Debug.Addr)(n, path)
					if h.Debug.Addr != "" {
						d.checkHostPort(n, path, h.Debug.Addr)
					}
				},
				"prometheus": d.section(fields{
					"enabled": d.boolean(&h.Debug.Prometheus.Enabled),
					"path": func(n *node, path string) {
						d.str(&h.Debug.Prometheus.Path)(n, path)
						if p := h.Debug.Prometheus.Path; p != "" && !strings.HasPrefix(p, "/") {
							d.fail(n, path, "must start with /, not %q", p)
						}
					},
				}),
			})
		},
	})
	if d.err != nil {
		return
	}
	if h.Debug.Prometheus.Enabled && h.Debug.Prometheus.Path == "" {
		h.Debug.Prometheus.Path = "/metrics"
	}
	if h.Addr == "" {
		return
	}
	addrNode := n
	if e := n.get("addr"); e != nil {
		addrNode = e.val
	}
	if h.Net == "tcp" {
		d.checkHostPort(addrNode, join(path, "addr"), h.Addr)
	}
}

func (d *decoder) checkHostPort(n *node, path, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		d.fail(n, path, "must be host:port, such as 127.0.0.1:5000 or :5000, not %q", addr)
		return
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > math.MaxUint16 {
		d.fail(n, path, "port must be a number from 0 to 65535, not %q", port)
	}
}

func (d *decoder) endpoints(dst *[]Endpoint) handler {
	return func(n *node, path string) {
		switch n.kind {
		case kindNull:
			return
		case kindSeq:
		default:
			d.fail(n, path, "must be a list of endpoints, not %s", n.describe())
			return
		}
		for i, it := range n.items {
			p := fmt.Sprintf("%s[%d]", path, i)
			// omnibus' defaults; reconfigure writes them out anyway.
			ep := Endpoint{Timeout: 500 * time.Millisecond, Threshold: 5, MaxRetries: 5, Backoff: time.Second}
			if it.kind != kindMap {
				d.fail(it, p, "must be a map (name, url, ...), not %s", it.describe())
				return
			}
			d.mapping(it, p, fields{
				"name":              d.str(&ep.Name),
				"url":               d.str(&ep.URL),
				"headers":           d.headers(&ep.Headers, true),
				"timeout":           d.duration(&ep.Timeout),
				"threshold":         d.count(&ep.Threshold),
				"maxretries":        d.count(&ep.MaxRetries),
				"backoff":           d.duration(&ep.Backoff),
				"ignoredmediatypes": d.stringList(&ep.IgnoredMediaTypes),
				"ignore": d.section(fields{
					"mediatypes": d.stringList(&ep.Ignore.MediaTypes),
					"actions":    d.stringList(&ep.Ignore.Actions),
				}),
				"disabled": d.boolean(&ep.Disabled),
			})
			if d.err != nil {
				return
			}
			// Distribution's older key: threshold alone sets the retries.
			if it.get("maxretries") == nil && it.get("threshold") != nil {
				ep.MaxRetries = ep.Threshold
			}
			at := it
			if e := it.get("url"); e != nil {
				at = e.val
			}
			if u, err := url.Parse(ep.URL); ep.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.fail(at, join(p, "url"), "must be an http:// or https:// URL, not %q", redact.URL(ep.URL))
				return
			}
			// The name keys the endpoint's queue folder and its counters.
			at = it
			if e := it.get("name"); e != nil {
				at = e.val
			}
			if ep.Name == "" {
				d.fail(at, join(p, "name"), "is required: every endpoint needs a name")
				return
			}
			for j, prev := range *dst {
				if prev.Name == ep.Name {
					d.fail(at, join(p, "name"), "%q is also the name of endpoint %d", ep.Name, j)
					return
				}
			}
			for j, a := range ep.Ignore.Actions {
				if !slices.Contains([]string{"push", "pull", "mount", "delete"}, a) {
					at = it
					if ig := it.get("ignore"); ig != nil {
						if acts := ig.val.get("actions"); acts != nil {
							at = acts.val
							if j < len(acts.val.items) {
								at = acts.val.items[j]
							}
						}
					}
					d.fail(at, fmt.Sprintf("%s.ignore.actions[%d]", p, j), "must be push, pull, mount or delete, not %q", a)
					return
				}
			}
			*dst = append(*dst, ep)
		}
	}
}

// authSchemes are the auth schemes regctl implements, with their keys.
var authSchemes = map[string]map[string]paramKind{
	"token": {
		"realm": paramString, "service": paramString, "issuer": paramString,
		"rootcertbundle": paramString, "autoredirect": paramBool,
	},
	"htpasswd": {"realm": paramString, "path": paramString},
}

func (d *decoder) auth(n *node, path string) map[string]any {
	if n.kind == kindNull {
		return nil
	}
	if n.kind != kindMap {
		d.fail(n, path, "must be a map naming one auth scheme (token or htpasswd), not %s", n.describe())
		return nil
	}
	out := map[string]any{}
	var first string
	for _, e := range n.entries {
		p := join(path, e.key)
		keys, ok := authSchemes[e.key]
		if !ok {
			d.warnUnknown(e.val, p, keysOf(authSchemes))
			continue
		}
		if first != "" {
			// Distribution refuses more than one too.
			d.fail(e.val, path, "names two schemes, %s and %s: keep one", first, e.key)
			return nil
		}
		first = e.key
		out[e.key] = d.typedMap(e.val, p, keys, "a map of "+e.key+" settings")
		if d.err != nil {
			return nil
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// suggest returns the known key closest to an unknown one, if it is
// close enough to be a typo.
func suggest(key string, known []string) string { return suggestpkg.Nearest(key, known) }
