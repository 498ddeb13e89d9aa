"""Input checks shared by every service: lengths and shapes, each failure naming its field."""

from __future__ import annotations

from datetime import date

from services.platform.errors import DomainError, ErrorCode


def text(value: str, field: str, *, max_len: int, min_len: int = 1) -> str:
    """Strip `value` and require min_len..max_len characters."""
    cleaned = value.strip()
    if len(cleaned) < min_len:
        raise DomainError(ErrorCode.INVALID_INPUT, f"{field} must not be empty.", field)
    if len(cleaned) > max_len:
        raise DomainError(ErrorCode.INVALID_INPUT, f"{field} is longer than {max_len} characters.", field)
    return cleaned


def optional_text(value: str | None, field: str, *, max_len: int) -> str | None:
    if value is None or not value.strip():
        return None
    return text(value, field, max_len=max_len)


def number_in(value: float, field: str, *, low: float, high: float) -> float:
    if not (low <= value <= high):
        raise DomainError(ErrorCode.INVALID_INPUT, f"{field} must be between {low} and {high}.", field)
    return value


EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2099, 12, 31)


def business_day(value: date, field: str = "date") -> date:
    """A business day the chain could have had (and whose bounds fit in a timestamp in every time zone)."""
    if not EARLIEST_DAY <= value <= LATEST_DAY:
        raise DomainError(ErrorCode.INVALID_INPUT, f"Dates are {EARLIEST_DAY} to {LATEST_DAY}.", field)
    return value
