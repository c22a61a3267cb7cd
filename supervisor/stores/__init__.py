"""Stores: where the supervisor persists jobs (docs/persistence.md).

``make_store`` picks one by name.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from supervisor.errors import ConfigError
from supervisor.stores.base import (
    InstanceStore,
    InstancesUnsupported,
    Store,
    instance_store,
    require_instance_store,
)
from supervisor.stores.memory import MemoryStore
from supervisor.stores.sqlite import SqliteStore

__all__ = [
    "InstanceStore",
    "InstancesUnsupported",
    "MemoryStore",
    "SqliteStore",
    "Store",
    "instance_store",
    "make_store",
    "require_instance_store",
]

# Every method of the ``Store`` protocol, which is what isinstance() checks: naming only
# some of them left "is not a store (missing: )" for a class lacking, say, max_seq.
STORE_METHODS = (
    "open",
    "close",
    "write",
    "load_active",
    "load_finished_since",
    "get",
    "query",
    "max_seq",
)


def make_store(settings: Any) -> Store:
    """The store named by ``settings.store``: memory, sqlite, or ``package.module:Class``."""
    name = settings.store
    if name == "memory":
        return MemoryStore(settings)
    if name == "sqlite":
        return SqliteStore(settings)
    if name == "postgres":
        raise ConfigError(f"{settings.source}: store: the postgres store is not available yet")
    module_name, sep, class_name = name.partition(":")
    if not sep or not module_name or not class_name:
        raise ConfigError(
            f'{settings.source}: store: expected "memory", "sqlite", "postgres" or '
            f'"package.module:Class", got {name!r}'
        )
    for path in reversed(settings.python_path):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{settings.source}: store: cannot load {name!r}: {exc}") from None
    store = cls(settings)
    if not isinstance(store, Store):
        missing = [m for m in STORE_METHODS if not callable(getattr(store, m, None))]
        raise ConfigError(
            f"{settings.source}: store: {name!r} is not a store (missing: {', '.join(missing)})"
        )
    return store
