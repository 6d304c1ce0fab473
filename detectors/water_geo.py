"""Waterway geometry: a local metric plane, chainage along the fairway, polygons, local time.

Distances of a few tens of kilometres on one river: an equirectangular plane about a reference
point is within 0.1 % of the great-circle distance there, well inside what any decision here
depends on (kilometres against knots).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import shapely

from events.water import LonLat

M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQUATOR = 111_320.0
KNOT_MPS = 1852.0 / 3600.0


class Plane:
    """Lon/lat ↔ metres east/north of a reference point."""

    def __init__(self, lon0: float, lat0: float) -> None:
        self.lon0, self.lat0 = lon0, lat0
        self.kx = M_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat0))

    def xy(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(lon, np.float64) - self.lon0) * self.kx, (
            np.asarray(lat, np.float64) - self.lat0
        ) * M_PER_DEG_LAT

    def point(self, p: LonLat) -> tuple[float, float]:
        return (p[0] - self.lon0) * self.kx, (p[1] - self.lat0) * M_PER_DEG_LAT

    def lonlat(self, x: float, y: float) -> LonLat:
        return self.lon0 + x / self.kx, self.lat0 + y / M_PER_DEG_LAT


class Fairway:
    """The channel's centreline in the plane: chainage (metres from its downstream end) and
    distance off it, for every point at once."""

    def __init__(self, plane: Plane, centreline: Sequence[LonLat]) -> None:
        self.plane = plane
        self.points = [plane.point(p) for p in centreline]
        self.line = shapely.LineString(self.points)

    def chainage(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(metres along the centreline to the nearest point on it, metres off it)."""
        pts = shapely.points(np.asarray(x, np.float64), np.asarray(y, np.float64))
        return shapely.line_locate_point(self.line, pts), shapely.distance(self.line, pts)

    def at(self, chainage: float, offset: float = 0.0) -> tuple[float, float]:
        """The plane point ``chainage`` metres along, ``offset`` metres to the left (west-ish
        for a river running north) of the centreline."""
        s = min(max(chainage, 0.0), self.line.length)
        p = self.line.interpolate(s)
        q = self.line.interpolate(min(s + 1.0, self.line.length))
        r = self.line.interpolate(max(s - 1.0, 0.0))
        dx, dy = q.x - r.x, q.y - r.y
        norm = math.hypot(dx, dy) or 1.0
        return p.x - dy / norm * offset, p.y + dx / norm * offset


def chainage_one(points: Sequence[tuple[float, float]], x: float, y: float) -> tuple[float, float]:
    """Reference twin of :meth:`Fairway.chainage` for one point, segment by segment."""
    best_d, best_s, walked = math.inf, 0.0, 0.0
    for (ax, ay), (bx, by) in itertools.pairwise(points):
        dx, dy = bx - ax, by - ay
        seg = math.hypot(dx, dy)
        u = 0.0 if seg == 0 else max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / seg**2))
        d = math.hypot(ax + u * dx - x, ay + u * dy - y)
        if d < best_d:
            best_d, best_s = d, walked + u * seg
        walked += seg
    return best_s, best_d


def inside(polygon: shapely.Polygon, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which points lie in ``polygon`` (its boundary counts as inside)."""
    return np.asarray(shapely.intersects_xy(polygon, np.asarray(x), np.asarray(y)), bool)


def polygon(plane: Plane, ring: Sequence[LonLat]) -> shapely.Polygon:
    return shapely.Polygon([plane.point(p) for p in ring])


def local_minute(t_ms: np.ndarray, offset_hours: int) -> np.ndarray:
    """Minute of the local day (0–1439) of each UTC millisecond time."""
    return ((np.asarray(t_ms, np.int64) // 60_000) + offset_hours * 60) % 1440


def in_windows(minute: np.ndarray, windows: Sequence[tuple[int, int]]) -> np.ndarray:
    """Whether each minute of day falls in any [start, end) window; end ≤ start wraps midnight."""
    m = np.asarray(minute, np.int64)
    out = np.zeros(m.shape, bool)
    for start, end in windows:
        out |= ((m >= start) & (m < end)) if start < end else ((m >= start) | (m < end))
    return out


def in_windows_one(minute: int, windows: Sequence[tuple[int, int]]) -> bool:
    """Reference twin of :func:`in_windows`."""
    for start, end in windows:
        if start < end and start <= minute < end:
            return True
        if start >= end and (minute >= start or minute < end):
            return True
    return False
