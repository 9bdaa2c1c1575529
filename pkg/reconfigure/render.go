package reconfigure

import (
	"bytes"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"text/template"

	"regctl/pkg/settings"
	"regctl/templates"
)

// File is one file reconfigure owns, as it should be on disk.
type File struct {
	Path    string
	Content []byte
	Mode    fs.FileMode
	// Group, when set, is the group that owns the file and may read it
	// (see resolveGroup); "" leaves the group new files get.
	Group string
	// Secret files never have their content shown (diffs, logs).
	Secret bool
	// What the file is, for the report ("registry config", ...).
	Role string
}

// Dir is a folder reconfigure makes sure exists.
type Dir struct {
	Path string
	Mode fs.FileMode
}

var tmpl = template.Must(template.New("").Funcs(template.FuncMap{
	"q":    quote,
	"yaml": yamlBlock,
}).ParseFS(templates.FS, "*.tmpl"))

// Render produces every file reconfigure owns from validated settings and
// the effective secrets. It touches no disk.
func Render(l *settings.Loaded, sec RegistrySecrets) ([]File, []Dir, error) {
	s := &l.Settings
	p := l.Resolve()

	cfg := &configData{
		Settings:            l.Path,
		LogLevel:            s.Registry.LogLevel,
		LogFormatter:        s.Registry.LogFormatter,
		Storage:             renderStorage(s.Registry.Storage, p),
		Addr:                s.Registry.RegistryHTTPAddr,
		Secret:              sec.HTTPSecret,
		RelativeURLs:        s.Registry.RelativeURLs,
		DebugAddr:           s.Registry.DebugAddr,
		HealthStoragedriver: s.Registry.HealthStoragedriverEnabled,
		Realm:               s.TokenRealm(),
		Issuer:              s.GitlabRails.RegistryIssuer,
		RootCertBundle:      p.Certificate,
		Validation:          s.Registry.ValidationEnabled,
		Schema1:             s.Registry.CompatibilitySchema1Enabled,
		Notifications:       renderNotifications(s.Registry.Notifications, s.Registry.NotificationSecret),
		QueueDir:            p.NotifyQueue,
		QueueMaxEvents:      s.Registry.NotificationsQueueMaxEvents,
		Redis:               s.Registry.Redis,
		Cluster:             clusterSection(s.Registry.Cluster),
		FallbackTags:        s.Registry.Referrers.FallbackTags,
	}
	config, err := execute("config.yml.tmpl", cfg)
	if err == nil {
		err = checkRendered(p.ConfigYML, config, cfg.tree())
	}
	if err != nil {
		return nil, nil, err
	}
	host, port := s.RegistryHostPort()
	gl := &gitlabData{
		Settings:                 l.Path,
		DefaultContainerRegistry: s.GitlabRails.DefaultProjectsFeaturesContainerRegistry,
		Enabled:                  s.GitlabRails.RegistryEnabled,
		Host:                     host,
		Port:                     port,
		APIURL:                   s.RegistryAPIURL(),
		Key:                      p.Key,
		Path:                     p.RegistryPath,
		Issuer:                   s.GitlabRails.RegistryIssuer,
		NotificationSecret:       s.Registry.NotificationSecret,
	}
	gitlab, err := execute("gitlab.yml.tmpl", gl)
	if err == nil {
		err = checkRendered(p.GitlabYML, gitlab, gl.tree())
	}
	if err != nil {
		return nil, nil, err
	}
	var files []File
	// A GitLab-only node ([registry] enable = false) gets GitLab's side:
	// gitlab.yml and the signing key, as omnibus does.
	if s.Registry.Enable {
		files = append(files,
			// config.yml holds the http secret and any S3 keys: owner only.
			File{Path: p.ConfigYML, Content: config, Mode: 0o600, Role: "config.yml"},
			File{Path: p.Certificate, Content: []byte(sec.InternalCertificate), Mode: 0o644, Role: "certificate"})
	}
	files = append(files,
		// gitlab.yml holds notification_secret: owner and GitLab's group.
		File{Path: p.GitlabYML, Content: gitlab, Mode: 0o640, Group: gitlabGroup, Role: "gitlab.yml"},
		File{Path: p.Key, Content: []byte(sec.InternalKey), Mode: 0o600, Secret: true, Role: "signing key"})
	dirs := []Dir{}
	for _, f := range files {
		dirs = appendDir(dirs, Dir{Path: filepath.Dir(f.Path), Mode: 0o755})
	}
	if p.StorageRoot != "" && s.Registry.Enable {
		dirs = appendDir(dirs, Dir{Path: p.StorageRoot, Mode: 0o770})
	}
	return files, dirs, nil
}

func appendDir(dirs []Dir, d Dir) []Dir {
	for _, e := range dirs {
		if e.Path == d.Path {
			return dirs
		}
	}
	return append(dirs, d)
}

func execute(name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	out := bytes.TrimRight(buf.Bytes(), "\n")
	return append(out, '\n'), nil
}

// renderStorage is the user's storage section plus omnibus' defaults:
// the filesystem driver at the default root when no driver is set,
// the in-memory blob descriptor cache, and deletes enabled.
func renderStorage(user map[string]any, p settings.Paths) map[string]any {
	st := deepCopy(user)
	switch settings.StorageDriver(st) {
	case "filesystem":
		fs, _ := st["filesystem"].(map[string]any)
		if fs == nil {
			fs = map[string]any{}
		}
		fs["rootdirectory"] = p.StorageRoot
		st["filesystem"] = fs
	case "s3":
		s3 := st["s3"].(map[string]any)
		// GitLab's registry reads pathstyle, Distribution forcepathstyle:
		// write both so either daemon gets what the admin asked for.
		if v, ok := s3["pathstyle"]; ok {
			if _, set := s3["forcepathstyle"]; !set {
				s3["forcepathstyle"] = v
			}
		} else if v, ok := s3["forcepathstyle"]; ok {
			s3["pathstyle"] = v
		}
	}
	if _, ok := st["cache"]; !ok {
		st["cache"] = map[string]any{"blobdescriptor": "inmemory"}
	}
	if _, ok := st["delete"]; !ok {
		st["delete"] = map[string]any{"enabled": true}
	}
	return st
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = deepCopy(sub)
		}
		out[k] = v
	}
	return out
}

type notificationView struct {
	settings.Notification
	Retries int
}

// renderNotifications fills Distribution's endpoint defaults. GitLab's
// registry calls the retry count maxretries and Distribution threshold:
// both are written with the same value. GitLab's notification_secret,
// when set, is what GitLab expects in the Authorization header of the
// events it receives: it is added to every endpoint that does not set
// that header itself.
func renderNotifications(eps []settings.Notification, secret string) []notificationView {
	out := make([]notificationView, 0, len(eps))
	for _, ep := range eps {
		if secret != "" && !hasHeader(ep.Headers, "Authorization") {
			h := make(map[string][]string, len(ep.Headers)+1)
			for k, vs := range ep.Headers {
				h[k] = vs
			}
			h["Authorization"] = []string{secret}
			ep.Headers = h
		}
		v := notificationView{Notification: ep, Retries: 5}
		if ep.Timeout == "" {
			v.Timeout = "500ms"
		}
		if ep.Backoff == "" {
			v.Backoff = "1s"
		}
		switch {
		case ep.MaxRetries > 0:
			v.Retries = ep.MaxRetries
		case ep.Threshold > 0:
			v.Retries = ep.Threshold
		}
		out = append(out, v)
	}
	return out
}

func hasHeader(h map[string][]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// clusterSection is what config.yml gets for [registry.cluster]: nil
// (no section) when it is the default, which the daemon assumes anyway.
func clusterSection(c settings.Cluster) *settings.Cluster {
	if c == settings.Defaults().Registry.Cluster {
		return nil
	}
	return &c
}
