// Command regctl runs and maintains a GitLab-style container registry from
// one settings file. See README.md.
package main

import (
	"os"

	"regctl/cmd"
)

func main() {
	os.Exit(cmd.Execute())
}
