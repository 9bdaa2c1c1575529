package storage

import "context"

// Optional capabilities. A Driver is the least every driver does; what
// only some do is an interface of its own, which callers look for with
// As (never with a type assertion of their own, and never by Name):
// Opener, Redirector and ExclusiveCreator (driver.go, exclusive.go) and
// the ones below.

// Checker is implemented by drivers that can test their backend (S3
// lists one key, the filesystem looks at its root folder), for the
// health check.
type Checker interface {
	Check(ctx context.Context) error
}

// BatchDeleter is implemented by drivers that can delete many files in
// one request (S3's DeleteObjects: 1000 keys a call).
type BatchDeleter interface {
	// DeleteMany removes the files at paths (files, never folders) in
	// as few requests as it can. Paths already gone are not errors; any
	// other failure is returned, naming the paths that are left.
	DeleteMany(ctx context.Context, paths []string) error
}

// FileLister is implemented by drivers with flat listings (S3's
// ListObjectsV2 without a delimiter, 1000 keys a request): every file
// below a folder, with its MD5 when the listing carries it.
type FileLister interface {
	// ListFiles calls fn for each file below folder p, folders
	// excluded, in any order; md5 is the content's MD5 in lowercase
	// hex, or "" when unknown. A missing folder lists nothing.
	ListFiles(ctx context.Context, p string, fn func(fi FileInfo, md5 string) error) error
}

// UnitDeleter is implemented by drivers that can delete many folders at
// once in fewer calls than one Delete each, given the files expected in
// each (the filesystem; see Unit).
type UnitDeleter interface {
	DeleteUnits(ctx context.Context, units []Unit) error
}

// LocalFolders is implemented by drivers whose folders are real and
// local (the filesystem): listing one is one directory read, a request
// is a system call rather than a network round trip, and Walk goes
// folder by folder, each sorted by name. Callers choose how to scan by
// it (GC reads such a storage by its layout, with few workers).
type LocalFolders interface {
	LocalFolders()
}

// FlatKeyspace is implemented by drivers that keep one flat keyspace
// behind a network (S3): folders are key prefixes, Walk meets keys in
// byte order (so "a-b/x" comes before "a/x"), and requests wait on the
// network, so callers keep many in flight.
type FlatKeyspace interface {
	FlatKeyspace()
}

// Unwrapper is implemented by drivers that wrap another one (the timed
// driver of pkg/metrics), so As finds the capabilities of the driver
// inside.
type Unwrapper interface {
	Unwrap() Driver
}

// CapabilityWrapper is implemented by wrappers that offer some
// capabilities of the driver they wrap through their own code (to time
// the calls). Capability is given a pointer to a capability interface
// variable; when the wrapped driver has that capability (found with As)
// and the wrapper handles it, it sets the variable and reports true.
// Otherwise it reports false and As looks further in, through Unwrap.
//
// A wrapper must not implement a capability interface as a method set
// of its own: a type assertion on it would claim the capability for
// every driver it wraps. So a wrapper has no fixed set of capabilities,
// the wrapped driver's set is what As finds, and no combination of them
// is hard-coded anywhere.
type CapabilityWrapper interface {
	Capability(target any) bool
}

// As finds capability T of d: d itself when it implements T, else what
// a wrapper offers for it (CapabilityWrapper), else the capability of
// the driver the wrapper wraps (Unwrapper), and so on inwards.
func As[T any](d Driver) (T, bool) {
	for d != nil {
		if c, ok := d.(T); ok {
			return c, true
		}
		if w, ok := d.(CapabilityWrapper); ok {
			var c T
			if w.Capability(&c) {
				return c, true
			}
		}
		u, ok := d.(Unwrapper)
		if !ok {
			break
		}
		d = u.Unwrap()
	}
	var zero T
	return zero, false
}

var (
	_ LocalFolders = (*Filesystem)(nil)
	_ UnitDeleter  = (*Filesystem)(nil)
	_ Opener       = (*Filesystem)(nil)
	_ Checker      = (*Filesystem)(nil)
	_ FlatKeyspace = (*S3)(nil)
	_ Checker      = (*S3)(nil)
	_ BatchDeleter = (*S3)(nil)
	_ FileLister   = (*S3)(nil)
	_ Redirector   = (*S3)(nil)
)
