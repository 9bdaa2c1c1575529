package reconfigure

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"regctl/pkg/certs"
	"regctl/pkg/settings"
)

// RegistrySecrets is the "registry" section of regctl-secrets.json, named
// as in omnibus' gitlab-secrets.json.
type RegistrySecrets struct {
	HTTPSecret          string `json:"http_secret,omitempty"`
	InternalKey         string `json:"internal_key,omitempty"`
	InternalCertificate string `json:"internal_certificate,omitempty"`
}

// Secrets is regctl-secrets.json. Sections regctl does not know are kept
// as they are, so a newer file survives an older regctl.
type Secrets struct {
	Registry RegistrySecrets
	other    map[string]json.RawMessage
	// Generated lists what Complete had to generate.
	Generated []string
}

// LoadSecrets reads the secrets file; a missing file gives empty secrets.
// A file that does not parse is an error: it is never overwritten, since
// that would lose the keys GitLab signs with.
func LoadSecrets(path string) (*Secrets, error) {
	s := &Secrets{other: map[string]json.RawMessage{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	if err := json.Unmarshal(b, &s.other); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON (%v): fix or restore it; regctl will not overwrite it", path, err)
	}
	if reg, ok := s.other["registry"]; ok {
		if err := json.Unmarshal(reg, &s.Registry); err != nil {
			return nil, fmt.Errorf("%s: section \"registry\": %v", path, err)
		}
	}
	return s, nil
}

// Complete generates whatever neither the file nor the settings give: a
// 128-hex-character http secret and the token-signing key pair (both
// halves together, since one is useless without the other).
func (s *Secrets) Complete(given *settings.Registry, now time.Time) error {
	r := &s.Registry
	if r.HTTPSecret == "" && given.HTTPSecret == "" {
		buf := make([]byte, 64)
		if _, err := rand.Read(buf); err != nil {
			return err
		}
		r.HTTPSecret = hex.EncodeToString(buf)
		s.Generated = append(s.Generated, "registry.http_secret")
	}
	if (r.InternalKey == "" || r.InternalCertificate == "") && given.InternalKey == "" {
		if err := s.GenerateKeyPair(now); err != nil {
			return err
		}
	}
	return nil
}

// GenerateKeyPair replaces the token-signing pair with a new one.
func (s *Secrets) GenerateKeyPair(now time.Time) error {
	key, cert, err := certs.GenerateKeyPair(now)
	if err != nil {
		return fmt.Errorf("generate token-signing key pair: %w", err)
	}
	s.Registry.InternalKey, s.Registry.InternalCertificate = string(key), string(cert)
	s.Generated = append(s.Generated, "registry.internal_key", "registry.internal_certificate")
	return nil
}

// Marshal renders the file, with the sections regctl does not know kept.
func (s *Secrets) Marshal() ([]byte, error) {
	out := map[string]any{}
	for k, v := range s.other {
		out[k] = v
	}
	out["registry"] = s.Registry
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Effective merges the secrets with values given in the settings, which
// win, as gitlab.rb's registry['internal_key'] wins over gitlab-secrets.json.
func (s *Secrets) Effective(r *settings.Registry) RegistrySecrets {
	e := s.Registry
	if r.HTTPSecret != "" {
		e.HTTPSecret = r.HTTPSecret
	}
	if r.InternalKey != "" {
		e.InternalKey, e.InternalCertificate = r.InternalKey, r.InternalCertificate
	}
	return e
}
