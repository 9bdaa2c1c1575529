package reconfigure

import (
	"crypto"
	"errors"
	"fmt"

	"regctl/pkg/certs"
	"regctl/pkg/settings"
)

// SigningKey is the internal key GitLab signs with, checked against its
// certificate so a token that the registry would reject is never printed.
func SigningKey(l *settings.Loaded) (crypto.Signer, error) {
	path := l.Resolve().Secrets
	sec, err := LoadSecrets(path)
	if err != nil {
		return nil, err
	}
	eff := sec.Effective(&l.Settings.Registry)
	if eff.InternalKey == "" {
		return nil, fmt.Errorf("no token-signing key: %s has no registry.internal_key and the settings set none; run `regctl reconfigure` first", path)
	}
	key, err := certs.ParsePrivateKeyPEM([]byte(eff.InternalKey))
	if err != nil {
		return nil, fmt.Errorf("registry.internal_key: %w", err)
	}
	if eff.InternalCertificate != "" {
		cert, err := certs.ParseCertificatePEM([]byte(eff.InternalCertificate))
		if err != nil {
			return nil, fmt.Errorf("registry.internal_certificate: %w", err)
		}
		type equaler interface{ Equal(crypto.PublicKey) bool }
		if pub, ok := cert.PublicKey.(equaler); !ok || !pub.Equal(key.Public()) {
			return nil, errors.New("registry.internal_key does not belong to registry.internal_certificate: the registry would reject the token; run `regctl certs verify`")
		}
	}
	return key, nil
}
