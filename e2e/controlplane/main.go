// Command k8s is a multi-call binary holding the Kubernetes control plane.
//
// One binary instead of five: the packages are compiled once either way, but the
// link step (the slow part of a cold build on two cores) runs once, and the cache
// keeps one artefact. The first argument (or the name it is invoked by) picks the
// component, busybox style:
//
//	k8s kube-apiserver --etcd-servers=...
//	k8s etcd --data-dir=...
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"

	// Registers the kube-apiserver's and controller-manager's metric and
	// version providers, as their own main packages do.
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
)

var components = map[string]bool{
	"etcd": true, "kube-apiserver": true, "kube-controller-manager": true,
	"kube-scheduler": true, "kubectl": true,
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args
	if !components[name] {
		if len(os.Args) < 2 {
			fmt.Fprintln(os.Stderr, "usage: k8s {kube-apiserver|kube-controller-manager|kube-scheduler|kubectl|etcd} [flags]")
			os.Exit(2)
		}
		name = os.Args[1]
		args = os.Args[1:]
	}
	switch name {
	case "etcd":
		etcdmain.Main(args)
	case "kube-apiserver":
		os.Args = args
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Args = args
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kube-scheduler":
		os.Args = args
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kubectl":
		os.Args = args
		if err := cli.RunNoErrOutput(kubectlcmd.NewDefaultKubectlCommand()); err != nil {
			// Prints the error the way kubectl does and exits non-zero.
			cmdutil.CheckErr(err)
		}
	default:
		fmt.Fprintf(os.Stderr, "k8s: unknown component %q\n", name)
		os.Exit(2)
	}
}
