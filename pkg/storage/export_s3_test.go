package storage

// SetS3ListPageSize makes d list n keys a page, so tests page through
// small trees.
func SetS3ListPageSize(d *S3, n int32) { d.listPageSize = n }
