from datetime import datetime, timezone


def utcnow() -> datetime:
    """Naive UTC (SQLite drops time zones; every timestamp in the DB is UTC)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def isoformat(value: datetime | None) -> str | None:
    return value.replace(tzinfo=timezone.utc).isoformat() if value else None
