package cmd

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"regctl/pkg/certs"
)

type verifyJSON struct {
	Passed bool          `json:"passed"`
	Checks []certs.Check `json:"checks"`
}

func verifyAsJSON(t *testing.T, want int, settings string) verifyJSON {
	t.Helper()
	r := mustCode(t, want, "certs", "verify", "-o", "json", "--settings", settings)
	var v verifyJSON
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("verify -o json: %v\n%s", err, r)
	}
	if len(v.Checks) != 7 {
		t.Errorf("verify -o json has %d checks, want 7", len(v.Checks))
	}
	return v
}

func checkStatus(v verifyJSON, name string) certs.Status {
	for _, c := range v.Checks {
		if c.Name == name {
			return c.Status
		}
	}
	return 0
}

var modulusRE = regexp.MustCompile(`modulus SHA-256: certificate ([0-9a-f]{64}), key ([0-9a-f]{64})`)

func TestCertsVerify(t *testing.T) {
	t.Parallel()
	dir, settings := prepared(t, "data_dir = \"data\"\n")
	files := renderedFiles(dir)

	ok := func(t *testing.T) {
		t.Helper()
		r := mustCode(t, 0, "certs", "verify", "--settings", settings)
		for _, name := range []string{certs.CheckCertParses, certs.CheckKeyParses, certs.CheckKeyType,
			certs.CheckPairMatches, certs.CheckIssuers, certs.CheckValidity, certs.CheckSecrets} {
			if lineWith(r.stdout, "ok    "+name) == "" {
				t.Errorf("%q is not ok:\n%s", name, r.stdout)
			}
		}
		if v := verifyAsJSON(t, 0, settings); !v.Passed {
			t.Errorf("JSON says passed=false: %+v", v)
		}
	}
	t.Run("after reconfigure", ok)

	t.Run("other key", func(t *testing.T) {
		key, _, err := certs.GenerateKeyPairBits(2048, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, files["signing key"], string(key), 0o600)
		r := mustCode(t, 1, "certs", "verify", "--settings", settings)
		line := lineWith(r.stdout, "FAIL  "+certs.CheckPairMatches)
		if line == "" {
			t.Fatalf("%q does not fail:\n%s", certs.CheckPairMatches, r.stdout)
		}
		m := modulusRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("no modulus SHA-256 values in %q", line)
		}
		if m[1] == m[2] {
			t.Errorf("the two moduli are the same: %q", line)
		}
		if lineWith(r.stdout, "FAIL  "+certs.CheckSecrets) == "" {
			t.Errorf("%q does not fail:\n%s", certs.CheckSecrets, r.stdout)
		}
		mustContain(t, "stdout", r.stdout, "token signed by untrusted key", "fix: ")
		mustContain(t, "stderr", r.stderr, "certs verify: 2 of 7 checks failed")

		v := verifyAsJSON(t, 1, settings)
		if v.Passed || checkStatus(v, certs.CheckPairMatches) != certs.Fail {
			t.Errorf("JSON: want passed=false and %q failed: %+v", certs.CheckPairMatches, v)
		}
	})

	t.Run("reconfigure restores the key", func(t *testing.T) {
		r := mustCode(t, 0, "reconfigure", "--settings", settings)
		mustContain(t, "reconfigure", r.stdout, files["signing key"]+" updated")
		ok(t)
	})

	t.Run("issuer edited by hand", func(t *testing.T) {
		gl := readFile(t, files["gitlab.yml"])
		edited := strings.Replace(gl, `issuer: "omnibus-gitlab-issuer"`, `issuer: "someone-else"`, 1)
		if edited == gl {
			t.Fatalf("no issuer line in gitlab.yml:\n%s", gl)
		}
		writeFile(t, files["gitlab.yml"], edited, 0o644)
		r := mustCode(t, 1, "certs", "verify", "--settings", settings)
		if l := lineWith(r.stdout, "FAIL  "+certs.CheckIssuers); !strings.Contains(l, `"someone-else"`) {
			t.Errorf("%q does not fail naming the edited issuer:\n%s", certs.CheckIssuers, r.stdout)
		}
		mustContain(t, "stderr", r.stderr, "certs verify: 1 of 7 checks failed")
		v := verifyAsJSON(t, 1, settings)
		if v.Passed || checkStatus(v, certs.CheckIssuers) != certs.Fail {
			t.Errorf("JSON: want passed=false and %q failed: %+v", certs.CheckIssuers, v)
		}
	})

	t.Run("reconfigure restores gitlab.yml", func(t *testing.T) {
		r := mustCode(t, 0, "reconfigure", "--settings", settings)
		mustContain(t, "reconfigure", r.stdout, files["gitlab.yml"]+" updated")
		ok(t)
	})
}

func TestCertsVerifyBeforeReconfigure(t *testing.T) {
	t.Parallel()
	dir, settings := newSettings(t, "data_dir = \"data\"\n")
	r := mustCode(t, 1, "certs", "verify", "--settings", settings)
	mustContain(t, "stderr", r.stderr, renderedFiles(dir)["config.yml"], "run `regctl reconfigure` first")
}

func TestCertsGenerate(t *testing.T) {
	t.Parallel()
	dir, settings := prepared(t, "data_dir = \"data\"\n")
	files := renderedFiles(dir)
	old := readSecrets(t, dir)
	oldCert := readFile(t, files["certificate"])

	ageFiles(t, dir)
	before := snapshot(t, dir)
	r := mustCode(t, 1, "certs", "generate", "--settings", settings)
	sameTree(t, before, snapshot(t, dir))
	mustContain(t, "stderr", r.stderr, "already exists", "--force", "hint: ")

	r = mustCode(t, 0, "certs", "generate", "--force", "--dry-run", "--settings", settings)
	sameTree(t, before, snapshot(t, dir))
	mustContain(t, "dry run", r.stdout, "(dry run: nothing written)", files["certificate"]+" would be updated")
	mustNotContain(t, "dry run", r.stdout, "PRIVATE KEY", old.Registry.HTTPSecret)

	r = mustCode(t, 0, "certs", "generate", "--force", "--settings", settings)
	mustContain(t, "generate", r.stdout, files["certificate"]+" updated", files["signing key"]+" updated",
		files["secrets"]+" updated", "Restart the registry and GitLab")
	if readFile(t, files["certificate"]) == oldCert {
		t.Error("the certificate file did not change")
	}
	cur := readSecrets(t, dir)
	if cur.Registry.InternalCertificate == old.Registry.InternalCertificate || cur.Registry.InternalKey == old.Registry.InternalKey {
		t.Error("the secrets file still holds the old pair")
	}
	if cur.Registry.HTTPSecret != old.Registry.HTTPSecret {
		t.Error("certs generate replaced the http secret")
	}
	if readFile(t, files["certificate"]) != cur.Registry.InternalCertificate {
		t.Error("the certificate file is not the one in the secrets")
	}
	mustCode(t, 0, "certs", "verify", "--settings", settings)
}

var kidRE = regexp.MustCompile(`^[A-Z2-7]{4}(:[A-Z2-7]{4}){11}$`)

func TestCertsShow(t *testing.T) {
	t.Parallel()
	dir, settings := prepared(t, "data_dir = \"data\"\n")
	const subject = "C=USA, O=GitLab, OU=Container, CN=Registry"

	r := mustCode(t, 0, "certs", "show", "--settings", settings)
	if l := lineWith(r.stdout, "subject:"); strings.TrimSpace(strings.TrimPrefix(l, "subject:")) != subject {
		t.Errorf("subject line %q, want %q", l, subject)
	}
	if l := lineWith(r.stdout, "issuer:"); strings.TrimSpace(strings.TrimPrefix(l, "issuer:")) != subject {
		t.Errorf("issuer line %q, want %q", l, subject)
	}
	fields := strings.Fields(strings.TrimPrefix(lineWith(r.stdout, "token kid:"), "token kid:"))
	if len(fields) == 0 {
		t.Fatalf("no token kid:\n%s", r.stdout)
	}
	kid := fields[0]
	if len(kid) != 59 || strings.Count(kid, ":") != 11 || !kidRE.MatchString(kid) {
		t.Errorf("token kid %q is not 48 base32 characters with a colon every 4", kid)
	}
	cert, err := certs.ParseCertificatePEM([]byte(readFile(t, renderedFiles(dir)["certificate"])))
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := certs.LibtrustKeyID(cert.PublicKey); kid != want {
		t.Errorf("token kid %q, want %q", kid, want)
	}
	mustContain(t, "show", r.stdout, "RSA 4096", "serial:              00")

	var js struct {
		Path        string     `json:"path"`
		Certificate certs.Info `json:"certificate"`
	}
	r = mustCode(t, 0, "certs", "show", "-o", "json", "--settings", settings)
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil {
		t.Fatalf("show -o json: %v\n%s", err, r)
	}
	if js.Path != renderedFiles(dir)["certificate"] || js.Certificate.Subject != subject || js.Certificate.KeyID != kid {
		t.Errorf("show -o json: %+v", js)
	}
}
