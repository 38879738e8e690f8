"""Traffic intensity over time: diurnal shape, weekday, Friday, Ramadan, Eid, New Year's Eve.

Shapes are given in local time by the profile; generated timestamps are UTC. The intensity of
a UTC day is returned per minute, normalised so that an ordinary weekday has a mean of 1.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from cdr.profile import WEEKDAYS, Profile

# Record types that follow the voice shape (people talking and texting); data has its own.
VOICE_LIKE = ("voice", "sms", "voip", "ims")


def hourly_intensity(profile: Profile, day: dt.date, record_type: str) -> np.ndarray:
    """Relative intensity of the 24 UTC hours of ``day`` (1.0 = an average weekday hour)."""
    cal = profile.calendar
    base = np.array(cal["data_hourly" if record_type == "data" else "voice_hourly"], dtype=np.float64)
    base = base / base.mean()
    out = np.empty(24)
    for utc_hour in range(24):
        local = dt.datetime.combine(day, dt.time()) + dt.timedelta(hours=utc_hour + profile.timezone_offset_h)
        h = local.hour
        weekday = WEEKDAYS[local.weekday()]
        factor = base[h] * cal["weekday_factor"][weekday]
        if weekday == "Friday":
            factor *= cal["friday_hourly_factor"][h]
        if profile.in_ramadan(local.date()):
            factor *= cal["ramadan_hourly_factor"][h]
        factor *= profile.eid_factor(local.date())
        if record_type in ("voice", "sms") and local.month == 1 and local.day == 1 and h == 0:
            factor *= cal["new_year_surge"]
        out[utc_hour] = factor
    return out


def minute_intensity(profile: Profile, day: dt.date, record_type: str) -> np.ndarray:
    """Per-minute intensity (1440 values), interpolated between hour midpoints so that the
    shape has no steps at hour boundaries; the surge of New Year's Eve stays a surge."""
    hourly = hourly_intensity(profile, day, record_type)
    centres = np.arange(24) * 60 + 30
    minutes = np.arange(1440)
    smooth = np.interp(minutes, centres, hourly)
    # Keep each hour's total exactly as the profile says (interpolation moves mass between hours).
    per_hour = smooth.reshape(24, 60)
    per_hour *= (hourly / per_hour.mean(axis=1))[:, None]
    return per_hour.reshape(-1)
