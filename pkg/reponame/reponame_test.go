package reponame

import "testing"

func TestValid(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "library/alpine": true, "a.b_c__d---e/f0": true,
		"": false, "/a": false, "a/": false, "a//b": false, "../a": false,
		"A": false, "a___b": false, "a_.b": false, "-a": false, "a%2e": false,
	} {
		if got := Valid(name); got != want {
			t.Errorf("Valid(%q) = %v, want %v", name, got, want)
		}
	}
}
