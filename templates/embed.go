// Package templates holds the files reconfigure renders, embedded so the
// regctl binary is all an admin has to install.
package templates

import "embed"

// FS holds config.yml.tmpl and gitlab.yml.tmpl.
//
//go:embed *.tmpl
var FS embed.FS
