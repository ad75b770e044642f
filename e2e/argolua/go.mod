// Argo CD's Lua runtime for the tests: github.com/yuin/gopher-lua at the version Argo CD
// v3.6 embeds. Its own module (gopher-lua has no dependencies: a cold build takes
// seconds), so no Kubernetes library is compiled for it.
module kubenova.io/e2e/argolua

go 1.23

require github.com/yuin/gopher-lua v1.1.2
