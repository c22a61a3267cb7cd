"""Worker programs the bench's supervisors run (scripts, started by path)."""
