package serve

import (
	"context"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"regctl/pkg/distconfig"
	"regctl/pkg/storage"
)

// TestDaemonBackfillsFallbackTags: a daemon started with
// regctl.referrers.fallbacktags writes the fallback tag of a referrer
// that was pushed while the setting was off.
func TestDaemonBackfillsFallbackTags(t *testing.T) {
	root := t.TempDir()
	fs, err := storage.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	subject := digest.FromString("the signed image")
	body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"artifactType":"application/x.sig",` +
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},` +
		`"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + subject.String() + `","size":1}}`)
	ref := digest.FromBytes(body)
	for p, b := range map[string][]byte{
		storage.BlobDataPath(ref):                         body,
		storage.ManifestRevisionLinkPath("sig/app", ref):  []byte(ref),
		storage.ReferrerLinkPath("sig/app", subject, ref): []byte(ref),
	} {
		if err := fs.PutContent(ctx, p, b); err != nil {
			t.Fatal(err)
		}
	}

	td := startDaemonWith(t, root, time.Hour, func(c *distconfig.Config) { c.Referrers.FallbackTags = true })
	tag := storage.TagCurrentLinkPath("sig/app", "sha256-"+subject.Encoded())
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := fs.Stat(ctx, tag); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fallback tag after 10s; daemon log:\n%s", td.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
