"""Stores: where the supervisor persists jobs (SPEC §5)."""
