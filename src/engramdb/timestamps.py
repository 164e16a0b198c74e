"""Timestamps: parsing caller input, the store's text form, and the clock.

Every time engramdb keeps is timezone-aware UTC. The stores write it as fixed-width ISO 8601
text so that string order is time order.
"""

from __future__ import annotations

from datetime import UTC, datetime

from engramdb.errors import InvalidInput

__all__ = ["from_iso", "parse_time", "to_epoch", "to_iso", "utcnow"]


def utcnow() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


def parse_time(value: object, field: str) -> datetime:
    """Read an ISO 8601 string or a datetime as an aware UTC datetime.

    A naive value is taken to be UTC.

    Raises:
        InvalidInput: the value is not a datetime or an ISO 8601 string.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise InvalidInput(field, "empty timestamp")
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise InvalidInput(
                field, f"malformed timestamp {value!r} (expected ISO 8601)"
            ) from None
    else:
        raise InvalidInput(
            field, f"expected an ISO 8601 string or datetime, got {type(value).__name__}"
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(field, f"timestamp {value!r} is out of range") from None


def to_iso(value: datetime) -> str:
    """Fixed-width UTC text, sortable as a string."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    """Inverse of `to_iso` (accepts any ISO 8601 text)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def to_epoch(value: datetime | None, default: float) -> float:
    """Seconds since the epoch, or `default` for an open end."""
    return default if value is None else value.timestamp()
