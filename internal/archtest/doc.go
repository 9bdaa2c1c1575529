// Package archtest holds tests of the rules between regctl's packages,
// checked with the go command (go list -deps) and go/parser, so that a
// rule broken by an import fails `go test ./...` rather than a review.
//
// The rules today. First: the commands that never serve (garbage collection,
// cleanup, usage, migrate-storage, registry-readonly, reconfigure and
// the service verbs) do not depend on the daemon, pkg/serve and
// pkg/registryd. Their logic lives in pkg/ packages, which must not
// import the daemon, even indirectly; and in cmd/, which is one package
// with `regctl serve` in it, only serve.go may import it. Second: the
// packages that read regctl.toml (cleanup, service, migrate) depend on
// pkg/settings, never on the renderer pkg/reconfigure, even in tests.
package archtest
