package storage

import (
	"context"
	"io"
	"time"
)

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
	// DeleteMany removes the files at paths (files, never folders; and
	// strays, by the Path an ObjectLister gave) in as few requests as it
	// can. Paths already gone are not errors; any
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

// Object is one entry of an ObjectLister listing: the backend's object
// as it is.
type Object struct {
	// Path is the driver path of a file, or of a folder (IsDir) in a
	// listing of one level. For a stray (Stray set) it is the name the
	// object has below the driver's root, with a leading "/", though no
	// driver path can take it: "/a/b/" for a "folder/" marker, "/a//b".
	Path    string
	Size    int64
	ModTime time.Time
	IsDir   bool
	// MD5 is the content's MD5 in lowercase hex, "" when the listing
	// does not tell it.
	MD5 string
	// Stray marks an object no driver call wrote nor can name: a 0-byte
	// "folder/" marker (AWS DataSync and some consoles leave them;
	// registries have shown them as tags with an empty name), or a key
	// another tool wrote with an empty, "." or ".." element. Listings
	// and Walk hide them; DeleteMany takes their Path.
	Stray bool
}

// ObjectLister is implemented by drivers whose backend is a flat
// keyspace that may hold strays (S3): a listing that shows them, for
// tools that mirror a storage and must remove them (migrate-storage).
// Objects come with what a flat listing tells anyway (size, MD5), so a
// comparison needs no request per object.
type ObjectLister interface {
	// ListObjects calls fn for every object below folder p, in any
	// order: all the way down, or with level only the objects right in
	// p, p's own marker among them, and each subfolder once (IsDir). A
	// driver's own objects of a write in progress are left out. A
	// missing folder lists nothing.
	ListObjects(ctx context.Context, p string, level bool, fn func(Object) error) error
}

// VerifiedPutter is implemented by drivers whose backend checks the
// content it receives against an MD5 the writer sends along (S3's
// Content-MD5): a copy tool hashes a file once and knows it arrived
// whole, and the driver need not hash it again to sign the request.
type VerifiedPutter interface {
	// PutVerified stores size bytes of body at p, atomically as
	// PutContent does, and fails unless what the backend stored has MD5
	// sum. body is read from its start, and again on a retry.
	PutVerified(ctx context.Context, p string, body io.ReadSeeker, size int64, sum []byte) error
}

// Upload is a multipart write in progress (see MultipartWriter).
type Upload struct {
	Path    string // driver path of the file it writes
	ID      string
	Started time.Time
}

// Part is one part of an Upload.
type Part struct {
	Number int32 // from 1
	Size   int64
	// MD5 is the part's MD5 in lowercase hex, "" when the backend does
	// not tell it.
	MD5 string
	// ETag is the backend's token for the part, for CompleteUpload.
	ETag string
}

// MultipartWriter is implemented by drivers that write a large file as
// parts sent in parallel, which stay in the backend until the write is
// completed or aborted (S3's multipart uploads): a write cut short (a
// killed copy) is resumed later, by any process, without sending the
// parts that are there again.
type MultipartWriter interface {
	// PartSize is the size of every part but the last of a file of size
	// bytes: the configured part size, or more where the backend's limit
	// on the number of parts needs it. A file no larger is written in
	// one request (PutVerified).
	PartSize(size int64) int64
	// ListUploads lists the writes in progress below folder p.
	ListUploads(ctx context.Context, p string) ([]Upload, error)
	// ListParts lists the parts of u uploaded so far.
	ListParts(ctx context.Context, u Upload) ([]Part, error)
	// CreateUpload starts a write of the file at p.
	CreateUpload(ctx context.Context, p string) (Upload, error)
	// UploadPart sends part n of u, size bytes of body with MD5 sum,
	// which the backend checks. body is read again on a retry.
	UploadPart(ctx context.Context, u Upload, n int32, body io.ReadSeeker, size int64, sum []byte) (Part, error)
	// CompleteUpload makes parts, in order, the file at u.Path.
	CompleteUpload(ctx context.Context, u Upload, parts []Part) error
	// AbortUpload drops u and its parts; one already gone is no error.
	AbortUpload(ctx context.Context, u Upload) error
}

// ConnectionPool is implemented by drivers that talk to their backend
// over a pool of connections (S3): a tool that keeps many more requests
// in flight than the pool keeps open (migration, a usage scan) asks for
// a driver with a larger one, or else it would open and close a
// connection for nearly every request.
type ConnectionPool interface {
	// WithConnections returns a copy of the driver that keeps up to n
	// connections open; the driver itself is unchanged.
	WithConnections(n int) Driver
}

// Describer is implemented by drivers that can say where they store,
// for messages ("s3://bucket/prefix at endpoint", a folder), with no
// credentials in it.
type Describer interface {
	Describe() string
}

// Describe is d's description (Describer), or its name.
func Describe(d Driver) string {
	if ds, ok := As[Describer](d); ok {
		return ds.Describe()
	}
	return d.Name()
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
	_ LocalFolders    = (*Filesystem)(nil)
	_ UnitDeleter     = (*Filesystem)(nil)
	_ Opener          = (*Filesystem)(nil)
	_ Checker         = (*Filesystem)(nil)
	_ VerifiedPutter  = (*Filesystem)(nil)
	_ Describer       = (*Filesystem)(nil)
	_ FlatKeyspace    = (*S3)(nil)
	_ Checker         = (*S3)(nil)
	_ BatchDeleter    = (*S3)(nil)
	_ FileLister      = (*S3)(nil)
	_ Redirector      = (*S3)(nil)
	_ ObjectLister    = (*S3)(nil)
	_ VerifiedPutter  = (*S3)(nil)
	_ MultipartWriter = (*S3)(nil)
	_ ConnectionPool  = (*S3)(nil)
	_ Describer       = (*S3)(nil)
)
