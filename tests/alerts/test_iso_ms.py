"""Alert times are written as JavaScript's toISOString writes them, whichever way they are computed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from credwatch.alerts.build import iso_ms
from credwatch.timemath import datetime_to_ms, format_ms


@settings(max_examples=3000, deadline=None)
@given(t=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59,
                                                                        999999)),
       offset=st.sampled_from([None, 0, 120, -330]))
def test_iso_ms_is_the_millisecond_utc_text_of_the_instant(t: datetime, offset: int | None) -> None:
    if offset == 0:
        t = t.replace(tzinfo=UTC)
    elif offset is not None:
        tz = timezone(timedelta(minutes=offset))
        try:
            t = t.replace(tzinfo=tz)
            t.astimezone(UTC)
        except OverflowError:
            return
    assert iso_ms(t) == format_ms(datetime_to_ms(t))


def test_edges_and_cut_not_rounded_milliseconds() -> None:
    assert iso_ms(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000Z"
    assert iso_ms(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00.000Z"
    assert iso_ms(datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC)) == \
        "1969-12-31T23:59:59.999Z"
    assert iso_ms(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))) == \
        "2025-12-31T22:00:00.000Z"
