// Command vela-core is KubeVela's application controller (github.com/oam-dev/kubevela,
// cmd/core), built from its Go module for the tests: the real peer Kubenova's
// VelaSync watches, not a stand-in. The e2e harness runs it with webhooks off,
// definitions rendered from the module's Helm chart, and one replica.
package main

import (
	"os"

	"github.com/oam-dev/kubevela/cmd/core/app"
)

func main() {
	if err := app.NewCoreCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
