"""Workflows: step functions built from inline handlers and jobs (docs/workflows.md)."""
