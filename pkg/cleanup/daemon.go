package cleanup

import (
	"crypto"
	"fmt"
	"net"

	"regctl/pkg/distconfig"
)

// NeedRegistryError says that the local daemon cannot be reached from
// its config.yml alone, and that --registry (with credentials) must name
// it: it listens on a unix socket or with TLS, or it checks htpasswd.
type NeedRegistryError struct{ msg string }

func (e *NeedRegistryError) Error() string { return e.msg }

// DaemonClient is a Client for the regctl daemon of cfg (read from
// configPath), on loopback: with token auth it mints its own tokens with
// the key signingKey returns (called only then), as GitLab would.
func DaemonClient(cfg *distconfig.Config, configPath string, signingKey func() (crypto.Signer, error), requests int) (*Client, error) {
	if cfg.HTTP.Net == "unix" || cfg.HTTP.TLS.Certificate != "" {
		return nil, &NeedRegistryError{fmt.Sprintf("%s: the daemon listens on a unix socket or with TLS: pass --registry URL", configPath)}
	}
	host, port, err := net.SplitHostPort(cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: http.addr %q: %w", configPath, cfg.HTTP.Addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	var auth Authenticator
	if tok, ok := cfg.Auth["token"].(map[string]any); ok {
		key, err := signingKey()
		if err != nil {
			return nil, err
		}
		issuer, _ := tok["issuer"].(string)
		auth = Minter{Key: key, Issuer: issuer, Subject: "regctl-cleanup"}
	} else if _, ok := cfg.Auth["htpasswd"]; ok {
		return nil, &NeedRegistryError{fmt.Sprintf("%s: the daemon uses htpasswd: pass --registry http://%s --username USER --password-stdin", configPath, net.JoinHostPort(host, port))}
	}
	return NewClient("http://"+net.JoinHostPort(host, port), auth, requests)
}
