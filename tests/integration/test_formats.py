"""Station formats on the real broker and database: a 治超 pass record and a 卡口 capture of the
same pass, posted to the gateway in their own formats, become one case with the plate and the
weight; ``offsite ingest import --format tmg`` puts the FHWA sample into road.wim in kilograms
and the record that fails FHWA's QC into the dead letters, naming its field."""

from __future__ import annotations

import hashlib
import http.server
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from events import ROAD_ANPR, ROAD_WIM
from events.topics import dlq
from offsite import services
from offsite.config import Settings
from offsite.gateway import create_key, import_files, running_gateway
from offsite.pipeline import run
from offsite.testing import http_server
from sim.images import jpeg, render_plate
from tests.integration.test_gateway import raw
from tests.integration.test_pipeline import cases_of

ROOT = Path(__file__).resolve().parents[2]
PLATE_JPEG = jpeg(render_plate("湘A12345", "yellow"))


class _Camera(http.server.BaseHTTPRequestHandler):
    """The camera's image server: its JPEGs by path."""

    files: ClassVar[dict[str, bytes]] = {"/kk/20261122/plate.jpg": PLATE_JPEG}

    def do_GET(self) -> None:
        data = self.files.get(self.path, b"")
        self.send_response(200 if data else 404)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def camera() -> Iterator[str]:
    with http_server(_Camera) as url:
        yield url


async def test_zhichao_and_kakou_records_of_one_pass_become_one_case(
    plain_settings: Settings, camera: str
) -> None:
    settings = plain_settings
    ep = services.endpoints(settings)
    # configs/sites.yaml: WIM-G107-1520 is 治超 station 43012106, CAM-G107-1520 卡口 430121000106
    _, station_key = await create_key(settings, "WIM-G107-1520")
    _, camera_key = await create_key(settings, "CAM-G107-1520")
    zhichao = {
        "previewCode": "4301210620261122081502001", "previewDate": "2026-11-22 08:15:02",
        "previewStationCode": "43012106", "licenseCodeFront": "湘A12345",
        "licensePlateColor": "黄", "vehicleType": "H11", "axisNum": "6", "speed": "58",
        "laneNo": "2", "totalWeight": "55000", "overLimitWeight": "6000", "axle1Weight": "7000",
        "axle2Weight": "9000", "axle3Weight": "9500", "axle4Weight": "9800",
        "axle5Weight": "9900", "axle6Weight": "9800", "measureType": "1", "isEscape": "0",
    }  # fmt: skip
    kakou = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        '<ns:WriteVehicleInfo xmlns:ns="http://webservice.tfc.tmri.com/">'
        "<kkbh>430121000106</kkbh><fxlx>3</fxlx><cdh>2</cdh><hphm>湘A12345</hphm><hpzl>01</hpzl>"
        "<gcsj>2026-11-22 08:15:02.400</gcsj><clsd>58</clsd><hpys>1</hpys><cllx>H11</cllx>"
        f"<tplj>{camera}/kk/</tplj><tp1></tp1><tztp>20261122/plate.jpg</tztp>"
        "</ns:WriteVehicleInfo></soap:Body></soap:Envelope>"
    )
    limits = settings.gateway.model_copy(update={"fetch_allow": ("127.0.0.1",)})
    async with running_gateway(settings, ep, limits=limits) as (url, _), httpx.AsyncClient() as c:
        res = await c.post(f"{url}/v1/formats/zhichao", json=zhichao,
                           headers={"X-API-Key": station_key})  # fmt: skip
        assert res.status_code == 202, res.text
        res = await c.post(f"{url}/v1/formats/kakou", content=kakou.encode(),
                           headers={"X-API-Key": camera_key, "Content-Type": "text/xml"})  # fmt: skip
        assert res.status_code == 200 and b"<return>1</return>" in res.content, res.text

    await run(settings, ep, until_done=True)
    (case,) = await cases_of(settings)
    assert case["record_id"] == "4301210620261122081502001"
    assert (case["plate"], case["plate_color"], case["measured_kg"]) == (
        "湘A12345",
        "yellow",
        55_000,
    )
    assert (case["limit_kg"], case["overload_kg"]) == (49_000, 3_250)  # 55,000 − 5 % − 49,000
    # SOAP carries no plate confidence: the camera's read is not taken as a fact, an officer looks
    assert case["outcome"] == "review"
    (capture,) = await raw(settings, ROAD_ANPR)
    assert capture["camera_id"] == "CAM-G107-1520" and capture["source_format"] == "kakou"
    (image,) = capture["images"]  # fetched from the camera's server, stored as a blob
    assert image["role"] == "plate" and image["sha256"] == hashlib.sha256(PLATE_JPEG).hexdigest()


async def test_import_tmg_sample_into_road_wim_and_the_qc_failure_into_the_dlq(
    plain_settings: Settings, tmp_path: Path
) -> None:
    settings = plain_settings
    # configs/sites.yaml: WIM-G107-1520 carries the TMG code 17018115 (FIPS 17, station 018115)
    sample = ROOT / "tests" / "data" / "tmg" / "tmg_w_records.txt"
    assert await import_files(settings, "tmg", [sample]) == 1  # the third line fails QC
    records = await raw(settings, ROAD_WIM)
    assert len(records) == 2
    first = next(r for r in records if r["tmg"]["gross_weight_lb"] == 57_886)
    # 57,886 lb × 0.45359237 kg/lb = 26,256.65 kg → 26,257 kg; 5 axles
    assert (first["gross_weight_kg"], first["axle_count"]) == (26_257, 5)
    assert first["device_id"] == "WIM-G107-1520"
    (letter,) = await raw(settings, dlq(ROAD_WIM))
    assert "gross weight (cols 27-32)" in letter["reason"] and letter["value"].startswith("W17")
    # imported again: the same ids, nothing new
    assert await import_files(settings, "tmg", [sample]) == 1
    assert len(await raw(settings, ROAD_WIM)) == 2
