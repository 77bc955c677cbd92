"""The scoring formulas, as pure functions over plain numbers (docs/scoring.md).

The SQL in ``scoring.service`` and ``recommendations.service`` applies exactly these formulas
set-based; tests check that both agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Exposure points at which a device's exposure score reaches 50 (the saturation constant K).
SATURATION = 150.0
SEVERITY_BASE = {"Critical": 9.5, "High": 7.5, "Medium": 5.0, "Low": 2.5}
THREAT_KEV = 2.0  # listed in CISA KEV: actively exploited
THREAT_PUBLIC_EXPLOIT = 1.5
INTERNET_FACING = 1.25
CONFIGURATION_FACTOR = 0.5  # a failed check weighs half as much as a CVE of equal score
DEVICE_WEIGHTS = {"Normal": 1.0, "Low": 0.75}
LOW_BAND_MAX = 30.0  # Low: 0-29
HIGH_BAND_MIN = 70.0  # High: 70-100


def vulnerability_points(
    *,
    cvss_score: float | None,
    severity: str,
    kev_listed: bool,
    public_exploit: bool,
    epss: float | None,
) -> float:
    """Exposure points of one weakness of a vulnerability: base x threat x likelihood."""
    base = cvss_score if cvss_score is not None else SEVERITY_BASE.get(severity, 5.0)
    if kev_listed:
        threat = THREAT_KEV
    elif public_exploit:
        threat = THREAT_PUBLIC_EXPLOIT
    else:
        threat = 1.0
    likelihood = 1.0 + min(max(epss or 0.0, 0.0), 1.0)
    return round(base * threat * likelihood, 6)


def configuration_points(weight: float) -> float:
    """Exposure points of one failed configuration check of the given weight (1-10)."""
    return weight * CONFIGURATION_FACTOR


def device_multiplier(internet_facing: bool) -> float:
    """Internet-facing devices are more exposed."""
    return INTERNET_FACING if internet_facing else 1.0


def exposure_score(points: float) -> float:
    """A device's exposure score (0-100) from its exposure points: 100 P / (P + K)."""
    if points <= 0:
        return 0.0
    return 100.0 * points / (points + SATURATION)


def exposure_level(score: float, *, has_weaknesses: bool = True) -> str:
    """Defender's level: None (no weaknesses), Low 0-29, Medium 30-69, High 70-100."""
    if not has_weaknesses or score <= 0:
        return "None"
    if score < LOW_BAND_MAX:
        return "Low"
    if score < HIGH_BAND_MIN:
        return "Medium"
    return "High"


def score_band(score: float) -> str:
    """The band of an organisation or group exposure score: Low, Medium or High."""
    if score < LOW_BAND_MAX:
        return "Low"
    if score < HIGH_BAND_MIN:
        return "Medium"
    return "High"


def device_weight(device_value: str, active_devices: int) -> float:
    """Weight of a device in an average: Normal 1, Low 0.75, High = active devices / 10."""
    if device_value == "High":
        return active_devices / 10.0
    return DEVICE_WEIGHTS.get(device_value, 1.0)


@dataclass(frozen=True, slots=True)
class ExposureSums:
    """The decomposable sums behind an exposure score over a set of active devices."""

    active_devices: int = 0
    high_value_devices: int = 0
    weight_low_normal: float = 0.0  # sum of Low/Normal device weights
    exposure_weighted: float = 0.0  # sum over Low/Normal devices of weight x score
    exposure_high: float = 0.0  # sum over High devices of score

    def __add__(self, other: ExposureSums) -> ExposureSums:
        return ExposureSums(
            self.active_devices + other.active_devices,
            self.high_value_devices + other.high_value_devices,
            self.weight_low_normal + other.weight_low_normal,
            self.exposure_weighted + other.exposure_weighted,
            self.exposure_high + other.exposure_high,
        )

    @property
    def high_weight(self) -> float:
        """The weight of each High-value device in this set: active devices / 10."""
        return self.active_devices / 10.0

    @property
    def total_weight(self) -> float:
        """The sum of all device weights in this set."""
        return self.weight_low_normal + self.high_weight * self.high_value_devices

    def score(self) -> float:
        """The weighted average exposure score over the set (0 when it is empty)."""
        total = self.total_weight
        if total <= 0:
            return 0.0
        return (self.exposure_weighted + self.high_weight * self.exposure_high) / total

    def impact(self, delta_weighted: float, delta_high: float) -> float:
        """How far :meth:`score` falls when devices' scores fall by the given sums."""
        total = self.total_weight
        if total <= 0:
            return 0.0
        return (delta_weighted + self.high_weight * delta_high) / total


def sum_exposure(devices: Iterable[tuple[str, float]]) -> ExposureSums:
    """Sums over ``(device_value, exposure_score)`` pairs of active devices."""
    sums = ExposureSums()
    for value, score in devices:
        if value == "High":
            sums += ExposureSums(1, 1, 0.0, 0.0, score)
        else:
            weight = DEVICE_WEIGHTS.get(value, 1.0)
            sums += ExposureSums(1, 0, weight, weight * score, 0.0)
    return sums


def secure_score(passed_weight: float, total_weight: float) -> float:
    """Secure Score for devices (0-100, higher is better): passed weight / applicable weight."""
    if total_weight <= 0:
        return 100.0
    return 100.0 * passed_weight / total_weight


def secure_score_impact(failing_weight: float, total_weight: float) -> float:
    """How far Secure Score rises when checks of ``failing_weight`` are fixed."""
    if total_weight <= 0:
        return 0.0
    return 100.0 * failing_weight / total_weight
