// Package reconfigure turns the settings (pkg/settings) into files: it
// renders the registry's config.yml and GitLab's gitlab.yml, generates and
// keeps the secrets in regctl-secrets.json, and writes them all
// atomically with their modes and group (Run), or shows the redacted diff
// of a dry run.
package reconfigure
