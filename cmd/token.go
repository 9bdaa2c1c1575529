package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"regctl/pkg/reconfigure"
	"regctl/pkg/token"
)

func newTokenCmd(root *rootOpts) *cobra.Command {
	c := &cobra.Command{
		Use:   "token",
		Short: "Mint registry tokens as GitLab does",
		Long: `token mints the JWTs GitLab hands to docker clients, signed with the same
internal key, so the registry accepts them without GitLab: for automation,
break-glass access and tests.`,
		Example: `  regctl token issue --scope repository:group/project:pull`,
		Args:    cobra.NoArgs,
		RunE:    func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	c.AddCommand(newTokenIssueCmd(root))
	return c
}

type tokenIssueOpts struct {
	*rootOpts
	scopes  []string
	subject string
	ttl     time.Duration
}

func newTokenIssueCmd(root *rootOpts) *cobra.Command {
	o := &tokenIssueOpts{rootOpts: root}
	c := &cobra.Command{
		Use:   "issue",
		Short: "Print a token for the given scopes, signed with the internal key",
		Long: `issue signs a token exactly as GitLab would: RS256 with the internal key from
regctl-secrets.json (or registry.internal_key in the settings), kid = the
key's libtrust fingerprint, issuer = gitlab_rails.registry_issuer, audience
"container_registry". Each --scope adds one access entry, written as docker
clients write scopes: TYPE:NAME:ACTIONS with actions pull, push, delete or *
(registry:catalog:* lists the catalog). With no --scope the token only logs
in. The token alone is printed, so $(regctl token issue ...) works; -o json
adds expires_at, kid and access.

Anyone holding the token has its access until it expires: keep --ttl short.`,
		Example: `  # pull and push one project, as the CI job token would
  regctl token issue --scope repository:group/project:pull,push

  # use it with curl
  TOKEN=$(regctl token issue --scope repository:group/project:pull)
  curl -H "Authorization: Bearer $TOKEN" https://registry.example.com/v2/group/project/tags/list

  # list the catalog, an hour long, logged as "backup"
  regctl token issue --scope 'registry:catalog:*' --subject backup --ttl 1h -o json`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	f := c.Flags()
	f.StringArrayVar(&o.scopes, "scope", nil, "access to grant, TYPE:NAME:ACTIONS (repeatable), e.g. repository:group/project:pull,push")
	f.StringVar(&o.subject, "subject", "regctl", "user name the token is for (the registry logs it as the actor)")
	f.DurationVar(&o.ttl, "ttl", token.DefaultTTL, "how long the token is valid")
	return c
}

func (o *tokenIssueOpts) run(*cobra.Command, []string) error {
	if o.ttl <= 0 {
		return usageError{fmt.Errorf("--ttl must be positive, not %s", o.ttl)}
	}
	access := make([]token.ResourceActions, 0, len(o.scopes))
	for _, s := range o.scopes {
		ra, err := token.ParseScope(s)
		if err != nil {
			return usageError{fmt.Errorf("--scope: %w", err)}
		}
		access = append(access, ra)
	}
	l, err := o.loadSettings()
	if err != nil {
		return err
	}
	key, err := reconfigure.SigningKey(l)
	if err != nil {
		return err
	}
	issued, err := token.Issue(key, token.IssueOptions{
		Issuer:   l.Settings.GitlabRails.RegistryIssuer,
		Audience: token.Service,
		Subject:  o.subject,
		Access:   access,
		TTL:      o.ttl,
	})
	if err != nil {
		return err
	}
	if o.json() {
		return o.printer().JSON(map[string]any{
			"token":      issued.Token,
			"expires_at": issued.ExpiresAt.UTC().Format(time.RFC3339),
			"kid":        issued.KeyID,
			"access":     issued.Access,
		})
	}
	// Plain, even on a terminal: the output is meant for $(...).
	_, err = fmt.Fprintln(o.stdout, issued.Token)
	return err
}
