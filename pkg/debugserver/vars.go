package debugserver

import "regctl/pkg/notify"

// RegistryVars is the "registry" entry of /debug/vars, as regctl serve
// fills it (Options.Vars) and `regctl status` reads it.
type RegistryVars struct {
	Node          string `json:"node"`
	ReadOnly      bool   `json:"read_only"`
	Notifications struct {
		Endpoints []notify.Stats `json:"endpoints"`
	} `json:"notifications"`
}
