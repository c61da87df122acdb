//go:build tools

// Package tools names the commands built from the pinned module, so `go mod tidy` keeps them.
package tools

import (
	_ "github.com/spidernet-io/spiderpool/cmd/coordinator"
	_ "github.com/spidernet-io/spiderpool/cmd/ifacer"
	_ "github.com/spidernet-io/spiderpool/cmd/spiderpool"
	_ "github.com/spidernet-io/spiderpool/cmd/spiderpool-agent"
	_ "github.com/spidernet-io/spiderpool/cmd/spiderpool-controller"
	_ "github.com/spidernet-io/spiderpool/cmd/spiderpool-init"
)
