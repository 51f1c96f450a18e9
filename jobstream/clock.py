"""Time, one way: instants are aware UTC datetimes; events carry epoch milliseconds; MySQL DATETIME(3) columns hold
naive UTC; the API speaks ISO 8601 with milliseconds and a ``Z``.

A naive datetime is always read as UTC here, never as the host's local time. Conversions to milliseconds are exact
integer arithmetic (floats would turn 0.123 s into 122 ms now and then).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """The same instant, aware, in UTC (a naive one is taken to be UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, rounded down."""
    return (as_utc(moment) - EPOCH) // _MILLISECOND


def from_epoch_ms(millis: int) -> datetime:
    return EPOCH + timedelta(milliseconds=millis)


def iso_ms(moment: datetime) -> str:
    """``2026-12-02T12:00:00.000Z``: the API's form of an instant."""
    return as_utc(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_to_epoch_ms(value: str) -> int:
    return epoch_ms(datetime.fromisoformat(value))


def db_utc(moment: datetime) -> datetime:
    """A naive UTC datetime for a DATETIME column."""
    return as_utc(moment).replace(tzinfo=None)


def db_now() -> datetime:
    """Now as a DATETIME(3) column keeps it: naive UTC, cut to milliseconds."""
    now = db_utc(utc_now())
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
