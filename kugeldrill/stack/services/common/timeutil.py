"""Kugelpos' business clock: business dates and timestamps in Asia/Tokyo (UTC+9, no DST)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

JST = timezone(timedelta(hours=9), "Asia/Tokyo")


def now_jst() -> datetime:
    return datetime.now(JST)


def now_iso() -> str:
    """`generate_date_time` as Kugelpos writes it (ISO 8601 with +09:00, microseconds)."""
    return now_jst().isoformat()


def business_date_today() -> str:
    """YYYYMMDD in Asia/Tokyo."""
    return now_jst().strftime("%Y%m%d")
