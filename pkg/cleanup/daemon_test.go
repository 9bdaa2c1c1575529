package cleanup

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"regctl/pkg/distconfig"
)

// DaemonClient reaches the local daemon on loopback, mints tokens only
// for token auth, and asks for --registry where config.yml alone cannot
// reach it.
func TestDaemonClient(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		cfg        distconfig.Config
		wantBase   string
		wantMinter bool
		needReg    string // the NeedRegistryError must say this
	}{
		{name: "open, any address", cfg: cfgWith(":5000", nil), wantBase: "http://127.0.0.1:5000"},
		{name: "unspecified address", cfg: cfgWith("0.0.0.0:5001", nil), wantBase: "http://127.0.0.1:5001"},
		{name: "named host", cfg: cfgWith("localhost:5002", nil), wantBase: "http://localhost:5002"},
		{name: "token auth", cfg: cfgWith("127.0.0.1:5003", map[string]any{"token": map[string]any{"issuer": "gitlab-issuer"}}), wantBase: "http://127.0.0.1:5003", wantMinter: true},
		{name: "htpasswd", cfg: cfgWith(":5004", map[string]any{"htpasswd": map[string]any{}}), needReg: "--registry http://127.0.0.1:5004 --username USER"},
		{name: "unix socket", cfg: func() distconfig.Config { c := cfgWith("/run/r.sock", nil); c.HTTP.Net = "unix"; return c }(), needReg: "unix socket or with TLS"},
		{name: "tls", cfg: func() distconfig.Config { c := cfgWith(":5005", nil); c.HTTP.TLS.Certificate = "/c.pem"; return c }(), needReg: "unix socket or with TLS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			asked := 0
			cl, err := DaemonClient(&tc.cfg, "config.yml", func() (crypto.Signer, error) { asked++; return key, nil }, 4)
			if tc.needReg != "" {
				var nr *NeedRegistryError
				if !errors.As(err, &nr) || !strings.Contains(err.Error(), tc.needReg) {
					t.Fatalf("err = %v, want a NeedRegistryError saying %q", err, tc.needReg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cl.base.String(); got != tc.wantBase {
				t.Errorf("base = %s, want %s", got, tc.wantBase)
			}
			m, isMinter := cl.auth.(Minter)
			if isMinter != tc.wantMinter || (asked == 1) != tc.wantMinter {
				t.Fatalf("auth = %T, signing key asked %d times; want minter %v", cl.auth, asked, tc.wantMinter)
			}
			if isMinter && (m.Issuer != "gitlab-issuer" || m.Key != key) {
				t.Errorf("minter = %+v", m)
			}
		})
	}
	// A key that cannot be loaded fails the client, before any request.
	bad := cfgWith(":5006", map[string]any{"token": map[string]any{}})
	if _, err := DaemonClient(&bad, "config.yml", func() (crypto.Signer, error) { return nil, errors.New("no key") }, 4); err == nil || err.Error() != "no key" {
		t.Fatalf("err = %v, want the key's error", err)
	}
}

func cfgWith(addr string, auth map[string]any) distconfig.Config {
	var c distconfig.Config
	c.HTTP.Addr = addr
	c.Auth = auth
	return c
}
