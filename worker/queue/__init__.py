"""The job queue: claiming, leases, retries, cancellation and the daemon that runs handlers."""
