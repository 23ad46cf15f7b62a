"""jobmatch-gateway: the application core (settings, storage, auth, the job-match service)."""
