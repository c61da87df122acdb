//go:build tools

// Package tools names the commands built from the pinned module, so `go mod tidy` keeps them:
// the thin plugin and its installer, as the chart's install-multus-binary init container runs them.
package tools

import (
	_ "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/install_multus"
	_ "gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus"
)
