"""Workflows the bench runs (``bench/workflow.py``); step workers import them by module."""
