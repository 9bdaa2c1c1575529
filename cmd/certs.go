package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"regctl/internal/ui"
	"regctl/pkg/certs"
	"regctl/pkg/reconfigure"
)

func newCertsCmd(root *rootOpts) *cobra.Command {
	c := &cobra.Command{
		Use:   "certs",
		Short: "Generate, verify and show the token-signing certificate and key",
		Long: `GitLab signs registry tokens with a private key; the registry checks them
with the matching certificate (config.yml auth.token.rootcertbundle). When the
two do not belong together, every docker login fails with
"token signed by untrusted key".`,
		Example: `  regctl certs verify
  regctl certs show
  regctl certs generate --force`,
		// A group: without Args and RunE, cobra would answer a mistyped
		// subcommand with help and exit 0.
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	c.AddCommand(newCertsGenerateCmd(root), newCertsVerifyCmd(root), newCertsShowCmd(root))
	return c
}

type certsGenerateOpts struct {
	*rootOpts
	force, dryRun bool
}

func newCertsGenerateCmd(root *rootOpts) *cobra.Command {
	o := &certsGenerateOpts{rootOpts: root}
	c := &cobra.Command{
		Use:   "generate",
		Short: "Make a new token-signing key pair and write it",
		Long: `generate makes an RSA 4096 key and a self-signed certificate as omnibus
does, keeps them in regctl-secrets.json and writes the certificate and key
files. It refuses to replace an existing pair unless --force is given.
After replacing a pair, restart the registry and GitLab.`,
		Example: `  regctl certs generate
  regctl certs generate --force`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	c.Flags().BoolVar(&o.force, "force", false, "replace an existing pair")
	c.Flags().BoolVarP(&o.dryRun, "dry-run", "n", false, "show what would change and write nothing")
	return c
}

func (o *certsGenerateOpts) run(*cobra.Command, []string) error {
	l, err := o.loadSettings()
	if err != nil {
		return err
	}
	res, err := reconfigure.GeneratePair(l, o.force, reconfigure.Options{DryRun: o.dryRun})
	if err != nil {
		return err
	}
	if err := printResult(o.printer(), res); err != nil {
		return err
	}
	if !o.json() && !o.dryRun {
		o.printer().Text("Restart the registry and GitLab so that both use the new pair.")
	}
	return nil
}

func newCertsVerifyCmd(root *rootOpts) *cobra.Command {
	c := &cobra.Command{
		Use:   "verify",
		Short: `Check the deployed pair: the "token signed by untrusted key" diagnosis`,
		Long: `verify compares the certificate named by config.yml (auth.token.rootcertbundle)
with the key named by gitlab.yml (registry.key), prints the SHA-256 of both
RSA moduli (the figures "openssl x509|rsa -noout -modulus | openssl sha256"
print), checks that both files name the same issuer, the certificate's
validity, key type and size, and that the files match regctl-secrets.json.
It exits 0 only when every check passes.`,
		Example: `  regctl certs verify
  regctl certs verify -o json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			in, err := root.deployedPair()
			if err != nil {
				return err
			}
			checks := certs.Verify(in)
			p := root.printer()
			if root.json() {
				if err := p.JSON(map[string]any{"passed": certs.Passed(checks), "checks": checks}); err != nil {
					return err
				}
			} else {
				p.Title("certs verify")
				p.Field("certificate", in.CertPath)
				p.Field("key", in.KeyPath)
				for _, ch := range checks {
					p.Line(statusOf(ch.Status), ch.Name, ch.Detail)
					if ch.Fix != "" {
						p.Hint("fix: " + ch.Fix)
					}
				}
			}
			if !certs.Passed(checks) {
				failed := 0
				for _, ch := range checks {
					if ch.Status == certs.Fail {
						failed++
					}
				}
				return silentError{fmt.Errorf("certs verify: %d of %d checks failed", failed, len(checks))}
			}
			return nil
		},
	}
	return c
}

func statusOf(s certs.Status) ui.Status {
	switch s {
	case certs.OK:
		return ui.OK
	case certs.Warn:
		return ui.Warn
	}
	return ui.Fail
}

func newCertsShowCmd(root *rootOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Show the certificate in use: subject, validity, fingerprints and token kid",
		Example: `  regctl certs show
  regctl certs show -o json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			in, err := root.deployedPair()
			if err != nil {
				return err
			}
			cert, err := certs.ParseCertificatePEM(in.CertPEM)
			if err != nil {
				return fmt.Errorf("%s: %w", in.CertPath, err)
			}
			info, err := certs.Describe(cert)
			if err != nil {
				return err
			}
			p := root.printer()
			if root.json() {
				return p.JSON(map[string]any{"path": in.CertPath, "certificate": info})
			}
			p.Title("token-signing certificate: " + in.CertPath)
			p.Field("subject", info.Subject)
			p.Field("issuer", info.Issuer)
			p.Field("serial", info.Serial)
			p.Field("not before", info.NotBefore.UTC().Format(time.RFC3339))
			p.Field("not after", fmt.Sprintf("%s (%d days left)", info.NotAfter.UTC().Format(time.RFC3339), int(time.Until(info.NotAfter).Hours()/24)))
			p.Field("key", info.KeyType)
			p.Field("sha256 fingerprint", info.SHA256Fingerprint)
			p.Field("token kid", info.KeyID+" (libtrust, as GitLab signs)")
			if info.JWKThumbprint != "" {
				p.Field("jwk thumbprint", info.JWKThumbprint+" (RFC 7638)")
			}
			if info.ModulusSHA256 != "" {
				p.Field("modulus sha256", info.ModulusSHA256)
			}
			return nil
		},
	}
}

// deployedPair reads the certificate and key the registry and GitLab use.
func (o *rootOpts) deployedPair() (certs.VerifyInput, error) {
	l, err := o.loadSettings()
	if err != nil {
		return certs.VerifyInput{}, err
	}
	return reconfigure.VerifyPairInput(l, time.Now())
}
