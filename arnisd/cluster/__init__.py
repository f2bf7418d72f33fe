"""The cluster: protocol, coordinator, worker, merger, journal, HTTP API."""
