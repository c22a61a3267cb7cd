"""jobvisor's supervisor: the sidecar that runs jobs as external worker processes."""
