"""Operator profiles: the country-specific facts (numbering, operators, regions, plans, calendar).

A profile is a TOML file in ``cdr/profiles/`` (or a path). The generator draws from it and the
batch layer rates usage with its tariff plans, so both read the same numbers.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from cdr.errors import CdrError

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Operator:
    name: str
    mnc: str
    prefix: str
    share: float


@dataclass(frozen=True)
class Region:
    code: int
    name: str
    population_k: float
    latitude: float
    longitude: float
    area_code: int


@dataclass(frozen=True)
class Device:
    tac: str
    brand: str
    model: str
    technology: str
    share: float


@dataclass(frozen=True)
class Plan:
    code: str
    line_type: str
    payment: str
    segment: str
    share: float
    monthly_fee: float
    voice_min: float
    sms: float
    data_mb: float
    voice_per_min: float
    voice_per_min_international: float
    sms_each: float
    data_per_mb: float
    unlimited_data: bool = False


@dataclass(frozen=True)
class Profile:
    name: str
    country: str
    country_code: str
    mcc: str
    currency: str
    vat_rate: float
    timezone_offset_h: int
    weekend: tuple[str, ...]
    mobile_share: float
    roaming_share: float
    operators: tuple[Operator, ...]
    fixed: dict[str, Any]
    regions: tuple[Region, ...]
    cells: dict[str, Any]
    devices: tuple[Device, ...]
    plans: tuple[Plan, ...]
    traffic: dict[str, Any]
    calendar: dict[str, Any]

    def plans_for(self, line_type: str) -> list[Plan]:
        return [p for p in self.plans if p.line_type == line_type]

    def in_ramadan(self, day: dt.date) -> bool:
        return any(
            dt.date.fromisoformat(a) <= day <= dt.date.fromisoformat(b)
            for a, b in self.calendar["ramadan"]
        )

    def eid_factor(self, day: dt.date) -> float:
        for a, b, factor in self.calendar["eid"]:
            if dt.date.fromisoformat(a) <= day <= dt.date.fromisoformat(b):
                return float(factor)
        return 1.0


def available_profiles() -> list[str]:
    folder = resources.files("cdr") / "profiles"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


@lru_cache(maxsize=8)
def load_profile(name_or_path: str = "algeria") -> Profile:
    path = Path(name_or_path)
    if not path.suffix == ".toml":
        path = Path(str(resources.files("cdr") / "profiles" / f"{name_or_path}.toml"))
    if not path.is_file():
        raise CdrError(
            f"unknown profile {name_or_path!r}: known profiles are {', '.join(available_profiles())} "
            "(or pass the path of a .toml profile)"
        )
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    try:
        return Profile(
            name=raw["name"],
            country=raw["country"],
            country_code=raw["country_code"],
            mcc=raw["mcc"],
            currency=raw["currency"],
            vat_rate=float(raw["vat_rate"]),
            timezone_offset_h=int(raw["timezone_offset_h"]),
            weekend=tuple(raw["weekend"]),
            mobile_share=float(raw["mobile_share"]),
            roaming_share=float(raw["roaming_share"]),
            operators=tuple(Operator(**o) for o in raw["operators"]),
            fixed=raw["fixed"],
            regions=tuple(Region(*w) for w in raw["regions"]["wilayas"]),
            cells=raw["cells"],
            devices=tuple(Device(*d) for d in raw["handsets"]["devices"]),
            plans=tuple(Plan(**p) for p in raw["plans"]),
            traffic=raw["traffic"],
            calendar=raw["calendar"],
        )
    except (KeyError, TypeError) as exc:
        raise CdrError(f"profile {path} is malformed: {exc}") from exc
