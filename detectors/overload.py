"""Gross-weight overload (超限) over a columnar batch, and its per-record reference twin.

measured − tolerance > limit, where tolerance is the device's in-service maximum permissible
error: class N → N % of the measured mass (OIML R134 / JJG 907), rounded up to the kilogram so
that the doubt goes to the party.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .limits import CONFIGURATIONS

DETECTOR = "overload.gross"
VERSION = "1.0.0"

CODES = tuple(CONFIGURATIONS)  # configuration index → code
CONFIG_INDEX = {c: i for i, c in enumerate(CODES)}
LIMITS = np.array([CONFIGURATIONS[c][0] for c in CODES], dtype=np.int64)


@dataclass(frozen=True)
class WimColumns:
    """One array per field, one row per WIM record."""

    gross_kg: np.ndarray  # int64
    config: np.ndarray  # int64 index into CONFIGURATIONS
    class_permille: np.ndarray  # int64: accuracy class × 10 (class 5 → 50 ‰)
    steady: np.ndarray  # bool: no validity flag that spoils the weighing
    certified: np.ndarray  # bool: metrology certificate valid on the day of the pass
    plate_ok: np.ndarray  # bool: a plate read good enough to address a penalty

    def __len__(self) -> int:
        return len(self.gross_kg)


@dataclass(frozen=True)
class OverloadColumns:
    limit_kg: np.ndarray
    tolerance_kg: np.ndarray
    overload_kg: np.ndarray
    overloaded: np.ndarray
    enforceable: np.ndarray


def detect(cols: WimColumns) -> OverloadColumns:
    limit = LIMITS[cols.config]
    tolerance = (cols.gross_kg * cols.class_permille + 999) // 1000
    overload = cols.gross_kg - tolerance - limit
    overloaded = overload > 0
    return OverloadColumns(
        limit_kg=limit,
        tolerance_kg=tolerance,
        overload_kg=overload,
        overloaded=overloaded,
        enforceable=overloaded & cols.steady & cols.certified & cols.plate_ok,
    )


def detect_one(
    gross_kg: int, config: str, class_permille: int, steady: bool, certified: bool, plate_ok: bool
) -> tuple[int, int, int, bool, bool]:
    """Reference twin of :func:`detect` for one record, written for obviousness."""
    limit = CONFIGURATIONS[config][0]
    tolerance = -(-gross_kg * class_permille // 1000)  # ceil(gross × class ‰), in integers
    overload = gross_kg - tolerance - limit
    over = overload > 0
    return limit, tolerance, overload, over, over and steady and certified and plate_ok
