package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Factory opens a driver from the parameters of its section in
// config.yml (storage.<name>). Errors name the key at fault.
type Factory func(ctx context.Context, params map[string]any) (Driver, error)

var (
	factoriesMu sync.RWMutex
	factories   = map[string]Factory{}
	localRoots  = map[string]func(params map[string]any) string{}
)

// Register makes a driver available to Open under name, as in
// Distribution's driver factory. Drivers register from an init function;
// registering a name twice panics.
func Register(name string, f Factory) {
	factoriesMu.Lock()
	defer factoriesMu.Unlock()
	if f == nil {
		panic("storage: Register " + name + " with a nil factory")
	}
	if _, dup := factories[name]; dup {
		panic("storage: Register called twice for driver " + name)
	}
	factories[name] = f
}

// Drivers lists the registered driver names, sorted.
func Drivers() []string {
	factoriesMu.RLock()
	defer factoriesMu.RUnlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Open opens the driver registered as name with its config.yml
// parameters. A name no driver registered is an error naming the key.
func Open(ctx context.Context, name string, params map[string]any) (Driver, error) {
	factoriesMu.RLock()
	f, ok := factories[name]
	factoriesMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("storage.%s: regctl supports the %s drivers; use CNCF Distribution for %q",
			name, strings.Join(Drivers(), " and "), name)
	}
	return f(ctx, params)
}

// LocalRoot is the local folder that the driver registered as name
// keeps its files in, given its config.yml parameters, and false for a
// driver whose files are not in a local folder. Tools that work on the
// storage's folder itself (a lock file beside the tree, a copy from it)
// ask this rather than the driver's name, without opening the driver.
func LocalRoot(name string, params map[string]any) (string, bool) {
	factoriesMu.RLock()
	f, ok := localRoots[name]
	factoriesMu.RUnlock()
	if !ok {
		return "", false
	}
	return f(params), true
}

// DefaultFilesystemRoot is the filesystem driver's root when
// storage.filesystem.rootdirectory is not set, as in Distribution.
const DefaultFilesystemRoot = "/var/lib/registry"

// filesystemRoot is the rootdirectory of filesystem parameters.
func filesystemRoot(params map[string]any) string {
	root, _ := params["rootdirectory"].(string)
	if root == "" {
		root = DefaultFilesystemRoot
	}
	return root
}

func init() {
	localRoots["filesystem"] = filesystemRoot
	Register("filesystem", func(_ context.Context, params map[string]any) (Driver, error) {
		d, err := NewFilesystem(filesystemRoot(params))
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return d, nil
	})
	Register("s3", func(ctx context.Context, params map[string]any) (Driver, error) {
		// NewS3 checks the bucket, bounded by its own timeout.
		d, err := NewS3(ctx, params)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return d, nil
	})
}
