package reconfigure

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/goccy/go-yaml"

	"regctl/pkg/certs"
	"regctl/pkg/settings"
)

// ErrPairExists is returned by GeneratePair when a pair is already kept
// and force was not asked for: replacing it invalidates every token GitLab
// signed with the old key until both sides restart.
var ErrPairExists = errors.New("a token-signing key pair already exists; use --force to replace it")

// GeneratePair makes a new token-signing pair, stores it in the secrets
// file and writes the certificate and key files (through Run, so a dry
// run shows the change and the write is atomic).
func GeneratePair(l *settings.Loaded, force bool, opts Options) (*Result, error) {
	if l.Settings.Registry.InternalKey != "" {
		return nil, errors.New("registry.internal_key is set in the settings file, which always wins over a generated pair: remove internal_key and internal_certificate from the settings, or replace them there")
	}
	sec, err := LoadSecrets(l.Resolve().Secrets)
	if err != nil {
		return nil, err
	}
	if sec.Registry.InternalKey != "" && !force {
		return nil, ErrPairExists
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := sec.GenerateKeyPair(now()); err != nil {
		return nil, err
	}
	opts.Secrets = sec
	return Run(l, opts)
}

// renderedConfig is the part of config.yml certs verify reads.
type renderedConfig struct {
	Auth struct {
		Token struct {
			Issuer         string `yaml:"issuer"`
			RootCertBundle string `yaml:"rootcertbundle"`
		} `yaml:"token"`
	} `yaml:"auth"`
}

// renderedGitlab is the part of gitlab.yml certs verify reads.
type renderedGitlab struct {
	Production struct {
		Registry struct {
			Key    string `yaml:"key"`
			Issuer string `yaml:"issuer"`
		} `yaml:"registry"`
	} `yaml:"production"`
}

// VerifyPairInput reads what is deployed, not what the settings say: the
// certificate config.yml names, the key gitlab.yml names, both issuers, and
// the secrets file. That is what the registry and GitLab actually use.
func VerifyPairInput(l *settings.Loaded, now time.Time) (certs.VerifyInput, error) {
	p := l.Resolve()
	in := certs.VerifyInput{Now: now}
	var cfg renderedConfig
	if err := readYAML(p.ConfigYML, &cfg); err != nil {
		return in, err
	}
	var gl renderedGitlab
	if err := readYAML(p.GitlabYML, &gl); err != nil {
		return in, err
	}
	in.CertPath, in.RegistryIssuer = cfg.Auth.Token.RootCertBundle, cfg.Auth.Token.Issuer
	in.KeyPath, in.GitLabIssuer = gl.Production.Registry.Key, gl.Production.Registry.Issuer
	// Unreadable files are left empty: Verify reports them as failures
	// with the path, next to every other check.
	in.CertPEM, _ = os.ReadFile(in.CertPath)
	in.KeyPEM, _ = os.ReadFile(in.KeyPath)
	sec, err := LoadSecrets(p.Secrets)
	if err != nil {
		return in, err
	}
	eff := sec.Effective(&l.Settings.Registry)
	in.SecretsCertPEM, in.SecretsKeyPEM = []byte(eff.InternalCertificate), []byte(eff.InternalKey)
	return in, nil
}

func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (run `regctl reconfigure` first)", err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
