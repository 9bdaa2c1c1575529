package distconfig

import (
	"slices"
	"sort"
	"strings"
)

// Environment overrides work as in Distribution, which omnibus users rely
// on through registry['env']: REGISTRY_ followed by a key path in upper
// case, levels joined by "_", sets that key; the value is read as a YAML
// value, so "true" is a boolean and "5" a number. An override is checked
// like the file's value, and errors name the variable instead of a line.
//
// Supported (single values only; lists and maps such as http.headers or
// notifications cannot be set this way):
//
//	REGISTRY_VERSION
//	REGISTRY_LOG_LEVEL, REGISTRY_LOG_FORMATTER
//	REGISTRY_STORAGE                        selects the driver; naming another
//	                                        driver than the file's drops the
//	                                        file's driver parameters
//	REGISTRY_STORAGE_<DRIVER>_<PARAM>       a driver parameter, e.g.
//	                                        REGISTRY_STORAGE_S3_BUCKET (the
//	                                        rest of the name, lower-cased, is
//	                                        the parameter)
//	REGISTRY_STORAGE_DELETE_ENABLED, REGISTRY_STORAGE_REDIRECT_DISABLE
//	REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR, ..._BLOBDESCRIPTORSIZE
//	REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED
//	REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_{ENABLED,AGE,INTERVAL,DRYRUN}
//	REGISTRY_STORAGE_TAG_CONCURRENCYLIMIT
//	REGISTRY_HTTP_{ADDR,NET,SECRET,RELATIVEURLS,DRAINTIMEOUT}
//	REGISTRY_HTTP_TLS_{CERTIFICATE,KEY,MINIMUMTLS}
//	REGISTRY_HTTP_DEBUG_ADDR, REGISTRY_HTTP_DEBUG_PROMETHEUS_{ENABLED,PATH}
//	REGISTRY_HEALTH_STORAGEDRIVER_{ENABLED,INTERVAL,THRESHOLD}
//	REGISTRY_AUTH_TOKEN_{REALM,SERVICE,ISSUER,ROOTCERTBUNDLE,AUTOREDIRECT}
//	REGISTRY_AUTH_HTPASSWD_{REALM,PATH}
//	REGISTRY_REDIS_{DB,USERNAME,PASSWORD,DIALTIMEOUT,READTIMEOUT,WRITETIMEOUT,POOLSIZE}
//	REGISTRY_VALIDATION_DISABLED, REGISTRY_COMPATIBILITY_SCHEMA1_ENABLED
//
// Any other REGISTRY_* variable is warned about and ignored, except
// REGISTRY_CONFIGURATION_PATH, Distribution's way of naming the file.
var envKeys = []string{
	"version",
	"log.level", "log.formatter",
	"storage.delete.enabled", "storage.redirect.disable",
	"storage.cache.blobdescriptor", "storage.cache.blobdescriptorsize",
	"storage.maintenance.readonly.enabled",
	"storage.maintenance.uploadpurging.enabled", "storage.maintenance.uploadpurging.age",
	"storage.maintenance.uploadpurging.interval", "storage.maintenance.uploadpurging.dryrun",
	"storage.tag.concurrencylimit",
	"http.addr", "http.net", "http.secret", "http.relativeurls", "http.draintimeout",
	"http.tls.certificate", "http.tls.key", "http.tls.minimumtls",
	"http.debug.addr", "http.debug.prometheus.enabled", "http.debug.prometheus.path",
	"health.storagedriver.enabled", "health.storagedriver.interval", "health.storagedriver.threshold",
	"auth.token.realm", "auth.token.service", "auth.token.issuer", "auth.token.rootcertbundle", "auth.token.autoredirect",
	"auth.htpasswd.realm", "auth.htpasswd.path",
	"redis.db", "redis.username", "redis.password", "redis.dialtimeout", "redis.readtimeout",
	"redis.writetimeout", "redis.poolsize",
	"validation.disabled", "compatibility.schema1.enabled",
}

const envPrefix = "REGISTRY_"

func envName(path string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

var envIndex = func() map[string][]string {
	m := make(map[string][]string, len(envKeys))
	for _, k := range envKeys {
		m[envName(k)] = strings.Split(k, ".")
	}
	return m
}()

// applyEnv returns root with the REGISTRY_* overrides found in environ
// applied.
func (d *decoder) applyEnv(root *node, environ []string) *node {
	if root.kind != kindMap {
		root = &node{kind: kindMap, line: root.line}
	}
	// `storage: inmemory` is Distribution's short form of a driver without
	// parameters; spell it out so overrides can reach into it.
	if e := root.get("storage"); e != nil && e.val.kind == kindScalar {
		e.val = &node{kind: kindMap, line: e.val.line, env: e.val.env,
			entries: []*entry{{key: e.val.text, val: &node{kind: kindNull, line: e.val.line, env: e.val.env}}}}
	}

	vars := map[string]string{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(name, envPrefix) {
			vars[name] = value
		}
	}
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	// The driver choice first, so its parameters land in the right section.
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "REGISTRY_STORAGE") != (names[j] == "REGISTRY_STORAGE") {
			return names[i] == "REGISTRY_STORAGE"
		}
		return names[i] < names[j]
	})

	for _, name := range names {
		value := vars[name]
		path := d.envPath(name)
		switch {
		case name == "REGISTRY_CONFIGURATION_PATH":
			continue
		case name == "REGISTRY_STORAGE":
			if !slices.Contains(drivers, value) {
				d.fail(&node{env: name}, "storage", "must name a storage driver (%s), not %q", orList(drivers), value)
				return root
			}
			selectDriver(root, name, value)
		case path != nil:
			setPath(root, name, path, envScalar(name, value))
		default:
			d.log.Warn("environment variable is not a supported registry config override; ignored", "env", name)
			continue
		}
		key := "storage"
		if path != nil {
			key = strings.Join(path, ".")
		}
		d.log.Info("registry config key set from the environment", "key", key, "env", name)
	}
	return root
}

// envPath maps a variable name to a key path, or nil.
func (d *decoder) envPath(name string) []string {
	if p, ok := envIndex[name]; ok {
		return p
	}
	// Longest driver name first, should one ever prefix another.
	ds := slices.Clone(drivers)
	sort.Slice(ds, func(i, j int) bool { return len(ds[i]) > len(ds[j]) })
	for _, drv := range ds {
		prefix := envPrefix + "STORAGE_" + strings.ToUpper(drv) + "_"
		if param, ok := strings.CutPrefix(name, prefix); ok && param != "" {
			return []string{"storage", drv, strings.ToLower(param)}
		}
	}
	return nil
}

// selectDriver makes driver the storage section's driver, dropping any
// other driver section, as Distribution does.
func selectDriver(root *node, env, driver string) {
	st := ensureMap(root, "storage", env)
	if e := st.get(driver); e != nil {
		return
	}
	for _, drv := range drivers {
		st.remove(drv)
	}
	st.entries = append(st.entries, &entry{key: driver, val: &node{kind: kindMap, env: env}})
}

// ensureMap returns parent's map at key, creating or replacing what is
// there when it is not a map.
func ensureMap(parent *node, key, env string) *node {
	e := parent.get(key)
	if e == nil {
		e = &entry{key: key, val: &node{kind: kindMap, env: env}}
		parent.entries = append(parent.entries, e)
	}
	if e.val.kind != kindMap {
		e.val = &node{kind: kindMap, line: e.val.line, env: env}
	}
	return e.val
}

func setPath(root *node, env string, path []string, val *node) {
	cur := root
	for _, seg := range path[:len(path)-1] {
		cur = ensureMap(cur, seg, env)
	}
	last := path[len(path)-1]
	if e := cur.get(last); e != nil {
		e.val = val
		return
	}
	cur.entries = append(cur.entries, &entry{key: last, val: val})
}
