"""RetryPolicy: backoff delays, the attempt limit, retry_on filtering and its own checks."""

from __future__ import annotations

import pytest

from supervisor.workflows import RetryPolicy


def test_delay_doubles_from_the_interval_up_to_the_cap():
    """The wait after failed attempt n is interval * backoff_rate**(n-1), capped at max_interval."""
    policy = RetryPolicy(max_attempts=10, interval=1.0, backoff_rate=2.0, max_interval=10.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_delay_with_a_constant_rate_and_a_huge_attempt():
    """backoff_rate 1 keeps the interval; an overflowing power is the cap."""
    assert RetryPolicy(interval=0.5, backoff_rate=1.0).delay(50) == 0.5
    assert RetryPolicy(backoff_rate=10.0, max_interval=30.0).delay(10_000) == 30.0


@pytest.mark.parametrize(
    ("retry_on", "error_type", "attempt", "expected"),
    [
        ((), "ValueError", 1, True),
        ((), None, 2, True),  # a crash or timeout: retried when any error is
        ((), "ValueError", 3, False),  # the third attempt was the last
        (("ConnectionError",), "ConnectionError", 1, True),
        (("ConnectionError",), "ValueError", 1, False),
        (("ConnectionError",), None, 1, False),
        (("ConnectionError", "TimeoutError"), "TimeoutError", 2, True),
    ],
)
def test_retries_counts_attempts_and_filters_by_class_name(retry_on, error_type, attempt, expected):
    """retries() is true while attempts remain and the error's class is in retry_on (or it is empty)."""
    policy = RetryPolicy(max_attempts=3, retry_on=retry_on)
    assert policy.retries(error_type, attempt) is expected


def test_retry_on_takes_names_classes_or_one_name():
    """Exception classes are kept by name; a single string is one name, not its letters."""
    assert RetryPolicy(retry_on=[ConnectionError, "KeyError"]).retry_on == (
        "ConnectionError",
        "KeyError",
    )
    assert RetryPolicy(retry_on="OSError").retry_on == ("OSError",)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be an integer >= 1, not 0"),
        ({"max_attempts": 2.5}, "max_attempts must be an integer >= 1, not 2.5"),
        ({"max_attempts": True}, "max_attempts must be an integer >= 1, not True"),
        ({"interval": -1}, "interval must be a finite number >= 0, not -1"),
        ({"max_interval": float("inf")}, "max_interval must be a finite number >= 0, not inf"),
        ({"backoff_rate": 0.5}, "backoff_rate must be a finite number >= 1, not 0.5"),
        ({"retry_on": ["not a name"]}, "retry_on takes exception class names, not 'not a name'"),
        ({"retry_on": [3]}, "retry_on takes exception class names, not 3"),
    ],
)
def test_bad_values_are_refused_naming_the_field(fields, message):
    """A policy with a bad value raises ValueError naming the field and the value."""
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        RetryPolicy(**fields)
