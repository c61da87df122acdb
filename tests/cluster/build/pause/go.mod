// The pod sandbox's process (what registry.k8s.io/pause runs): no dependencies.
module underlay.test/pause

go 1.24.0
