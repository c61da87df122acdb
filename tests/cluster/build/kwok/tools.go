//go:build tools

// Package tools names the command built from the pinned module, so `go mod tidy` keeps it.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
