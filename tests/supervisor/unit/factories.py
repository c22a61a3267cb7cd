"""Building ``JobRecord``s for unit tests without a supervisor around them."""

from __future__ import annotations

import itertools
from typing import Any

from supervisor.records import JobRecord
from supervisor.states import JobStatus

_ids = itertools.count(1)


def make_job(**fields: Any) -> JobRecord:
    """A job record with plausible defaults; any field can be overridden."""
    n = next(_ids)
    values: dict[str, Any] = {
        "id": f"job{n:017d}",
        "name": "kind",
        "data": None,
        "status": JobStatus.PENDING,
        "seq": n,
        "created_at": 1_700_000_000.0 + n,
        "node": "test-node",
    }
    values.update(fields)
    return JobRecord(**values)
