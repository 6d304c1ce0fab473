"""Issue #30 items 6 and 7: the 研判 page lists the vehicles that come back (repeat offenders,
cloned plates, passes flagged for evading the weighing) with their history, counted from fixed
data; the map page carries the configured GeoJSON, the places and the open tasks, and a bad
GeoJSON file stops start-up naming the file and field."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from events import ConfigError
from offsite.config import load_map
from sinks.dispatch import Dispatch
from tests.unit.test_no_wrong_fine import AT, decide, passing

from .test_console import client_of, log_in
from .test_dispatch import ROOT, SQUADS, Desk
from .test_lifecycle import World


async def add_passes(w: World) -> None:
    """A second overload of 湘A12345 a day later, and a straddling pass of 湘D11111 (review)."""
    made = []
    for rid, gross, plate, kw in (("r-again", 56_000, "湘A12345", {}),
                                  ("r-straddle", 56_000, "湘D11111", {"flags": ["straddle"]})):  # fmt: skip
        made += await decide(passing(rid, gross, ts=AT + dt.timedelta(days=1), plate=plate, **kw))
    await (await w.store.begin_batch(made)).commit()


async def test_the_analysis_page_lists_who_comes_back_with_history(desk: Desk) -> None:
    await add_passes(desk.world)
    async with client_of(desk.console) as command:
        await log_in(command, "zhou")
        desk.world.clock.now = AT + dt.timedelta(days=2)
        page = await command.get("/analysis")
        assert page.status_code == 200
        rows = _rows(page.text)
        # by hand: 湘A12345 has two overload cases; leads 1 and 2 are cloned plates of 湘A12345
        # and 湘B88888; only the straddling pass is flagged for evasion
        assert rows["repeat"] == {"湘A12345": 2}
        assert rows["cloned"] == {"湘A12345": 1, "湘B88888": 1}
        assert rows["evasion"] == {"湘D11111": 1}
        assert rows["operators"] == {} and rows["vessels"] == {}
        assert "骑线行驶" in page.text and "历史记录" in page.text


def _rows(text: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for section in re.split(r'<section id="', text)[1:]:
        sid = section.split('"', 1)[0]
        out[sid] = {k: int(n) for k, n in re.findall(
            r'<tr class="repeat" data-key="([^"]+)" data-count="(\d+)"', section)}  # fmt: skip
    return out


async def test_the_map_carries_the_roads_places_and_open_tasks(desk: Desk) -> None:
    w = desk.world
    desk.console.geojson = load_map(ROOT / "configs" / "map.geojson")
    d = Dispatch(w.store.pool, SQUADS, w.clock)
    await d.create("lead", "lead-0001", None, "zhou", hours=1)
    w.clock.now += dt.timedelta(hours=2)
    async with client_of(desk.console) as command:
        await log_in(command, "zhou")
        page = await command.get("/map")
        assert page.status_code == 200 and "/static/leaflet/leaflet.js" in page.text
        raw = re.search(
            r'<script type="application/json" id="map-data">(.*?)</script>', page.text, re.S
        )
        assert raw is not None
        data = json.loads(raw.group(1))
        assert {f["properties"]["name"] for f in data["geojson"]["features"]} >= {
            "湘江（长沙段）",
            "国道312线",
        }
        assert {p["id"] for p in data["places"]} == {s.id for s in desk.console.registry.sites}  # type: ignore[union-attr]
        assert [(t["site"], t["overdue"]) for t in data["tasks"]] == [("G312-K1035-E", True)]
        js = await command.get("/static/leaflet/leaflet.js")
        assert js.status_code == 200 and b"Leaflet" in js.content[:400]


def test_the_shipped_map_covers_every_site_and_checkpoint() -> None:
    from offsite.config import load_waterways
    from tests.unit.test_stages import REGISTRY

    doc = load_map(ROOT / "configs" / "map.geojson")
    xs = [p for f in doc["features"] for p in _flat(f["geometry"]["coordinates"])]
    lons, lats = [p[0] for p in xs], [p[1] for p in xs]
    water = load_waterways(ROOT / "configs" / "waterways.yaml")
    for lat, lon in [(s.lat, s.lon) for s in REGISTRY.sites] + [
        (c.lat, c.lon) for c in water.checkpoints
    ]:
        assert min(lats) <= lat <= max(lats) and min(lons) <= lon <= max(lons)


def _flat(c: list) -> list:  # type: ignore[type-arg]
    return [c] if isinstance(c[0], int | float) else [p for x in c for p in _flat(x)]


@pytest.mark.parametrize(("text", "field"), [
    ('{"type": "Feature"}', "type"),
    ('{"type": "FeatureCollection", "features": [{"properties": {"name": "a"}, "geometry": {"type": "Circle"}}]}', "features.0.geometry"),
    ('{"type": "FeatureCollection", "features": [{"properties": {}, "geometry": {"type": "Point", "coordinates": [1, 2]}}]}', "features.0.properties.name"),
    ('{"type": "FeatureCollection", "features": [{"properties": {"name": "a"}, "geometry": {"type": "Point", "coordinates": [28.2, 112.9]}}]}', "features.0.geometry.coordinates"),
    ('{"type": "FeatureCollection",\n "features": [}', "-"),
])  # fmt: skip
def test_a_bad_map_file_names_its_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "map.geojson"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_map(path)
    assert err.value.field == field and str(path) in str(err.value)
