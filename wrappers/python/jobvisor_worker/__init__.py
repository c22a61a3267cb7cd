"""The Python worker library: ``from jobvisor_worker import Job, run_job`` (SPEC §8)."""
