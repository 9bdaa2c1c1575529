package reconfigure

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"

	"github.com/BurntSushi/toml"

	"regctl/internal/testtools"
)

// TestDistributionStartsOnHostileValues: CNCF Distribution v3.1.2
// starts on a config.yml holding each hostile payload in every free
// string it reads (secret, issuer, notification name, header names and
// values, media types, actions, Redis credentials), and answers /v2/
// with the token challenge the settings ask for.
func TestDistributionStartsOnHostileValues(t *testing.T) {
	testtools.Tool(t, testtools.DistributionTool)
	for i, payload := range hostilePayloads {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			addr := testtools.FreeAddr(t)
			var src bytes.Buffer
			err := toml.NewEncoder(&src).Encode(map[string]any{
				"data_dir": "data",
				"registry": map[string]any{
					"registry_http_addr":  addr,
					"http_secret":         payload,
					"notification_secret": payload,
					"storage":             map[string]any{"filesystem": map[string]any{"rootdirectory": "storage"}},
					"notifications": []map[string]any{{
						"name": payload, "url": "http://127.0.0.1:9/hook",
						"headers":           map[string]any{"X-Test": []string{payload}, "X-" + payload: []string{"v"}},
						"ignoredmediatypes": []string{payload},
						"ignore":            map[string]any{"actions": []string{payload}},
					}},
					"redis": map[string]any{"addrs": []string{"127.0.0.1:9"}, "password": payload, "clientname": payload},
				},
				"gitlab_rails": map[string]any{"registry_issuer": payload},
			})
			if err != nil {
				t.Fatal(err)
			}
			l := setup(t, src.String())
			if _, err := Run(l, Options{}); err != nil {
				t.Fatalf("payload %q: %v", payload, err)
			}
			testtools.StartDistribution(t, l.Resolve().ConfigYML, addr)
			resp, err := http.Get("http://" + addr + "/v2/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := `Bearer realm="http://localhost/jwt/auth",service="container_registry"`
			if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || got != want {
				t.Errorf("payload %q: /v2/ answered %d with %q, want 401 with %q", payload, resp.StatusCode, got, want)
			}
		})
	}
}
