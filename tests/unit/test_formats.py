"""Station formats (ingest.formats): the published samples decoded to offsite's records, values
and units checked by hand; records that cannot be mapped name the format's field; images by URL
fetched only from allowed addresses (a local HTTP server on 127.0.0.1); the gateway's
``/v1/formats/{name}`` over in-memory doubles."""

from __future__ import annotations

import base64
import http.server
import io
import json
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from PIL import Image as PILImage
from pydantic import ValidationError

from events.models import DeadLetter
from events.registry import Registry
from ingest.fetch import Fetcher
from ingest.formats import Item, Unmapped, decode, messages
from ingest.gateway import create_app
from ingest.intake import GatewaySettings, Intake, Refused
from ingest.stations import Stations
from ingest.testing import ListProducer, MemoryAcceptances, MemoryBlobs, MemoryKeys
from ingest.watch import FolderWatcher
from offsite.config import load_registry

ROOT = Path(__file__).resolve().parents[2]
TMG = (ROOT / "tests" / "data" / "tmg" / "tmg_w_records.txt").read_bytes().splitlines()


def registry(**codes: dict[str, str]) -> Registry:
    """configs/sites.yaml with only the given device codes."""
    reg = load_registry(ROOT / "configs" / "sites.yaml")
    devices = [d.model_copy(update={"codes": codes.get(d.id.replace("-", "_"), {})})
               for d in reg.devices]  # fmt: skip
    return reg.model_copy(update={"devices": devices})


def jpeg(width: int = 64, height: int = 32) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), "orange").save(buf, "JPEG")
    return buf.getvalue()


# --- FHWA TMG "W" ---------------------------------------------------------------------------

STATION = registry(WIM_G107_1520={"tmg": "17018115"})


def test_tmg_sample_line_is_57886_lb_26257_kg_5_axles() -> None:
    # W 17 018115 3 1 2012 11 07 16 09 ··· 057886 05 11210 0151 12300 0045 13730 0214 09815 0048
    # 10831: Illinois (FIPS 17), station 018115, east (3), lane 1, 2012-11-07 16 h, class 9,
    # 57,886 lb, 5 axles. 1 lb = 0.45359237 kg exactly; 0.1 ft = 30.48 mm exactly; half up.
    (item,) = decode("tmg", TMG[0], STATION)
    assert isinstance(item, Item) and item.kind == "wim"
    d = item.doc
    # 57,886 × 0.45359237 = 26,256.648 → 26,257 kg
    assert d["gross_weight_kg"] == 26_257 and d["tmg"]["gross_weight_lb"] == 57_886
    assert d["axle_count"] == 5
    # 11,210 × 0.45359237 = 5,084.77 → 5,085; 12,300 → 5,579.19 → 5,579; 13,730 → 6,227.82 →
    # 6,228; 9,815 → 4,452.01 → 4,452; 10,831 → 4,912.86 → 4,913 (sum 26,257, the gross)
    assert d["axle_weights_kg"] == [5_085, 5_579, 6_228, 4_452, 4_913]
    # 151 × 30.48 = 4,602.48 → 4,602; 45 → 1,371.6 → 1,372; 214 → 6,522.72 → 6,523;
    # 48 → 1,463.04 → 1,463 mm
    assert d["axle_spacings_mm"] == [4_602, 1_372, 6_523, 1_463]
    assert (d["site_id"], d["device_id"], d["lane"]) == ("G107-K1520-S", "WIM-G107-1520", 1)
    assert d["ts"] == "2012-11-07T16:00:00+08:00"  # the hour, in the site's local time
    assert d["flags"] == ["time_to_the_hour", "speed_not_reported"]
    assert d["tmg"]["direction"] == "3" and d["tmg"]["vehicle_class"] == "09"


def test_tmg_second_sample_and_stable_distinct_ids() -> None:
    # 18,351 lb × 0.45359237 = 8,323.87 → 8,324 kg; 8,522 → 3,865.51 → 3,866; 9,829 →
    # 4,458.36 → 4,458; spacing 252 × 30.48 = 7,680.96 → 7,681 mm
    items = decode("tmg", b"\n".join([TMG[1], TMG[1], TMG[0]]), STATION)
    assert [i.doc["gross_weight_kg"] for i in items if isinstance(i, Item)] == [
        8_324,
        8_324,
        26_257,
    ]
    assert items[0].doc["axle_weights_kg"] == [3_866, 4_458]  # type: ignore[union-attr]
    assert items[0].doc["axle_spacings_mm"] == [7_681]  # type: ignore[union-attr]
    ids = [i.doc["record_id"] for i in items if isinstance(i, Item)]
    assert len(set(ids)) == 3  # the same line twice: the same truck type twice in the hour
    again = decode("tmg", b"\n".join([TMG[1], TMG[1], TMG[0]]), STATION)
    assert [i.doc["record_id"] for i in again if isinstance(i, Item)] == ids


def test_tmg_record_failing_qc_is_unmapped_naming_the_gross_field() -> None:
    # the third sample: 47,289 lb gross but axles 9,818 + 91,025 + 18,346 = 119,189 lb
    (bad,) = decode("tmg", TMG[2], STATION)
    assert isinstance(bad, Unmapped) and bad.field == "gross weight (cols 27-32)"
    assert "disagrees with the sum" in str(bad)
    sent, dead = messages([bad])
    assert sent == [] and dead[0].topic == "road.wim.dlq"
    letter = DeadLetter.model_validate_json(dead[0].value)
    assert letter.value == TMG[2].decode().rstrip() and "gross weight (cols 27-32)" in letter.reason


def test_tmg_samples_match_their_published_field_values() -> None:
    # tests/data/tmg/tmg_w_records.expected.json: each sample line's fields as read by hand
    # (pounds, feet); converted here with exact fractions, independently of the adapter
    def half_up(x: Fraction) -> int:
        return int(x + Fraction(1, 2))

    cases = json.loads((ROOT / "tests/data/tmg/tmg_w_records.expected.json").read_text())
    for case in cases:
        want = case["expected"]
        (got,) = decode("tmg", case["line"].encode(), STATION)
        if not want["sum_matches_gvw"]:
            assert isinstance(got, Unmapped) and got.field == "gross weight (cols 27-32)"
            continue
        assert isinstance(got, Item)
        d = got.doc
        assert d["gross_weight_kg"] == half_up(want["gvw_lb"] * Fraction("0.45359237"))
        assert d["tmg"]["gross_weight_lb"] == want["gvw_lb"] and d["axle_count"] == want["n_axles"]
        assert d["axle_weights_kg"] == [half_up(w * Fraction("0.45359237"))
                                        for w in want["axle_weights_lb"]]  # fmt: skip
        assert d["axle_spacings_mm"] == [half_up(Fraction(str(ft)) * Fraction("304.8"))
                                         for ft in want["axle_spacings_ft"]]  # fmt: skip
        assert d["lane"] == want["lane"] and d["tmg"]["direction"] == want["direction"]
        assert int(d["tmg"]["vehicle_class"]) == want["vehicle_class"]
        assert d["ts"].startswith(f"{want['year']}-{want['month']:02}-{want['day']:02}"
                                  f"T{want['hour']:02}:00")  # fmt: skip


def test_tmg_station_not_in_the_registry_is_named() -> None:
    (bad,) = decode("tmg", TMG[0], registry())
    assert isinstance(bad, Unmapped) and bad.field == "state + station (cols 2-9)"
    assert "'17018115'" in str(bad)


# --- 治超 pass records -------------------------------------------------------------------------

ZC = registry(WIM_G107_1520={"zhichao": "43012106"}, CAM_G107_1520={"zhichao": "43012106"})
IMAGE = jpeg()


def zc_record(**changes: object) -> dict[str, object]:
    # the Hunan 表B.1 过车检测数据 fields (paperwork review 2026-12-07 §5.1); values are strings
    record: dict[str, object] = {
        "previewCode": "4301210620261122081502001", "previewDate": "2026-11-22 08:15:02",
        "previewStationCode": "43012106", "licenseCodeFront": "湘A12345",
        "licenseCodeBack": "湘A1234挂", "licensePlateColor": "1", "vehicleType": "H11",
        "axisNum": "6", "speed": "62.5", "laneNo": "2", "totalWeight": "55000",
        "overLimitWeight": "6000", "axle1Weight": "7000", "axle2Weight": "9000",
        "axle3Weight": "9500", "axle4Weight": "9800", "axle5Weight": "9900",
        "axle6Weight": "9800", "snapshotTime": "2026-11-22 08:15:01", "measureType": "1",
        "overLimitRate": "12.2", "isEscape": 0,
        "plateImg": base64.b64encode(IMAGE).decode(),
        "imgFileList": ["http://127.0.0.1:1/a.jpg"],
    }  # fmt: skip
    record.update(changes)
    return record


def test_zhichao_record_to_a_wim_record_and_the_station_capture() -> None:
    wim, cap = decode("zhichao", json.dumps(zc_record()).encode(), ZC)
    assert isinstance(wim, Item) and isinstance(cap, Item)
    w = wim.doc
    assert (w["record_id"], w["device_id"], w["site_id"]) == (
        "4301210620261122081502001", "WIM-G107-1520", "G107-K1520-S")  # fmt: skip
    assert w["ts"] == "2026-11-22T08:15:02+08:00" and w["lane"] == 2 and w["speed_kmh"] == 62.5
    assert w["gross_weight_kg"] == 55_000 and w["axle_count"] == 6
    assert w["axle_weights_kg"] == [7000, 9000, 9500, 9800, 9900, 9800]  # kg, as sent
    assert w["axle_spacings_mm"] == [] and w["flags"] == []  # the format has none
    c = cap.doc
    assert (c["camera_id"], c["plate"], c["plate_color"]) == ("CAM-G107-1520", "湘A12345", "yellow")
    assert c["ts"] == "2026-11-22T08:15:01+08:00" and c["confidence"] == 0.0
    assert cap.sender == "WIM-G107-1520"  # the station's key sends both
    inline, url = cap.images
    assert (inline.role, inline.data, inline.url) == ("plate", IMAGE, None)
    assert (url.role, url.source, url.url) == (
        "overview",
        "imgFileList.0",
        "http://127.0.0.1:1/a.jpg",
    )


def test_zhichao_batch_maps_each_record_and_names_the_missing_field() -> None:
    batch = [zc_record(), zc_record(previewCode="2", axle2Weight=""), zc_record(isEscape="1",
             previewCode="3", licenseCodeFront="未识别")]  # fmt: skip
    out = decode("zhichao", json.dumps(batch).encode(), ZC)
    assert [type(x).__name__ for x in out] == ["Item", "Item", "Unmapped", "Item", "Item"]
    assert isinstance(out[2], Unmapped) and out[2].field == "axle2Weight"
    escaped = out[3]
    assert isinstance(escaped, Item) and escaped.doc["flags"] == ["escape"]  # 逃检: reviewed
    assert escaped.doc["plate"] == "湘A1234挂"  # no front plate read: the back plate


def test_zhichao_gross_against_axles_and_unknown_station_are_named() -> None:
    (bad,) = decode("zhichao", json.dumps(zc_record(totalWeight="65000")).encode(), ZC)
    assert isinstance(bad, Unmapped) and bad.field == "totalWeight"
    (bad,) = decode("zhichao", json.dumps(zc_record(previewStationCode="9")).encode(), ZC)
    assert isinstance(bad, Unmapped) and bad.field == "previewStationCode"
    (bad,) = decode("zhichao", json.dumps(zc_record(previewDate="22/11/2026")).encode(), ZC)
    assert isinstance(bad, Unmapped) and bad.field == "previewDate"


def test_zhichao_without_a_camera_mapped_is_the_wim_record_only() -> None:
    only = registry(WIM_G107_1520={"zhichao": "43012106"})
    (wim,) = decode("zhichao", json.dumps(zc_record()).encode(), only)
    assert isinstance(wim, Item) and wim.kind == "wim" and wim.doc["plate"] == "湘A12345"


# --- 卡口 WriteVehicleInfo ----------------------------------------------------------------------

KK = registry(CAM_G107_1520={"kakou": "430121000106"})
SOAP = """<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
 <soap:Body><ns:WriteVehicleInfo xmlns:ns="http://webservice.tfc.tmri.com/">
  <kkbh>430121000106</kkbh><fxlx>3</fxlx><cdh>2</cdh><hphm>湘A12345</hphm><hpzl>01</hpzl>
  <gcsj>2026-11-22 08:15:03.250</gcsj><clsd>61</clsd><clxs>80</clxs><wfdm></wfdm><cwkc>1650</cwkc>
  <hpys>1</hpys><cllx>H11</cllx><fzhpzl></fzhpzl><fzhphm></fzhphm><fzhpys></fzhpys><clpp></clpp>
  <clwx></clwx><csys>A</csys><tplj>http://127.0.0.1:1/kk/</tplj><tp1>20261122/1.jpg</tp1>
  <tp2></tp2><tp3></tp3><tztp>20261122/plate.jpg</tztp>
 </ns:WriteVehicleInfo></soap:Body></soap:Envelope>""".encode()


def test_kakou_soap_to_a_capture() -> None:
    (item,) = decode("kakou", SOAP, KK)
    assert isinstance(item, Item) and item.kind == "anpr" and item.sender == "CAM-G107-1520"
    d = item.doc
    assert (d["site_id"], d["camera_id"], d["lane"]) == ("G107-K1520-S", "CAM-G107-1520", 2)
    assert d["ts"] == "2026-11-22T08:15:03.250000+08:00"
    assert (d["plate"], d["plate_color"], d["vehicle_type"]) == ("湘A12345", "yellow", "truck")
    assert d["confidence"] == 0.0  # SOAP carries no confidence
    assert [(i.role, i.url) for i in item.images] == [
        ("front", "http://127.0.0.1:1/kk/20261122/1.jpg"),
        ("plate", "http://127.0.0.1:1/kk/20261122/plate.jpg")]  # fmt: skip
    (again,) = decode("kakou", SOAP, KK)
    assert isinstance(again, Item) and again.doc["capture_id"] == d["capture_id"]


def test_kakou_json_variant_with_hpzxd() -> None:
    record = {"kkbh": "430121000106", "kkmc": "G107 K1520", "cdh": "1", "hphm": "湘B54321",
              "hpys": "蓝", "hpzl": "02", "hpzxd": "92", "gcsj": "2026-11-22 08:16:00",
              "cllx": "K33", "tp1": "http://127.0.0.1:1/x.jpg"}  # fmt: skip
    (item,) = decode("kakou", json.dumps([record]).encode(), KK)
    assert isinstance(item, Item)
    assert (item.doc["confidence"], item.doc["plate_color"], item.doc["vehicle_type"]) == (
        0.92, "blue", "bus")  # fmt: skip
    # the scale: a whole number is a percentage, so "1" is 1 % (reviewed), never certainty
    for hpzxd, want in (("1", 0.01), (1, 0.01), ("0.95", 0.95), (0.5, 0.5), ("95.5", 0.955)):
        (it,) = decode("kakou", json.dumps({**record, "hpzxd": hpzxd}).encode(), KK)
        assert isinstance(it, Item) and it.doc["confidence"] == pytest.approx(want), hpzxd
    (none,) = decode("kakou", json.dumps({**record, "hphm": "无牌"}).encode(), KK)
    assert isinstance(none, Item) and none.doc["plate"] is None
    (bad,) = decode("kakou", json.dumps({**record, "kkbh": "1"}).encode(), KK)
    assert isinstance(bad, Unmapped) and bad.field == "kkbh" and bad.kind == "anpr"
    assert messages([bad])[1][0].topic == "road.anpr.dlq"


def test_kakou_soap_with_a_dtd_is_refused_before_parsing() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    (bad,) = decode("kakou", bomb, KK)
    assert isinstance(bad, Unmapped) and "DTD" in str(bad)


# --- fetching images by URL -------------------------------------------------------------------


class _Images(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    status: ClassVar[int] = 404  # the answer for a path not in files

    def do_GET(self) -> None:
        data = self.files.get(self.path)
        self.send_response(200 if data is not None else self.status)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_fetch_only_from_allowed_addresses(server: str) -> None:
    _Images.files = {"/a.jpg": IMAGE, "/big.jpg": b"\xff\xd8\xff" + b"x" * 5000}
    assert Fetcher(["127.0.0.0/8"], 4096).fetch(f"{server}/a.jpg", "tp1") == IMAGE
    assert Fetcher(["localhost", "127.0.0.1"], 4096).fetch(f"{server}/a.jpg", "tp1") == IMAGE
    for allow, url, status in [
        (["10.0.0.0/8"], f"{server}/a.jpg", 422),  # not an allowed address
        ([], f"{server}/a.jpg", 422),  # fetching not enabled
        (["127.0.0.1"], f"{server}/none.jpg", 422),  # the server answers 404
        (["127.0.0.1"], f"{server}/big.jpg", 413),  # over the image size limit
        (["127.0.0.1"], "file:///etc/passwd", 422),
    ]:
        with pytest.raises(Refused) as exc:
            Fetcher(allow, 4096).fetch(url, "tp1")
        assert exc.value.status == status and exc.value.problems[0][0] == "tp1"


def test_fetch_allow_takes_host_names_and_networks_and_names_a_typo() -> None:
    ok = ("img.station.example", "localhost", "127.0.0.1", "10.20.0.0/16", "fd00::/8")
    assert GatewaySettings(fetch_allow=ok).fetch_allow == ok
    for typo in ("http://img.station.example", "10.20.0.0/33", "300.1.2.3", "img station"):
        with pytest.raises(ValidationError) as exc:
            GatewaySettings(fetch_allow=("127.0.0.1", typo))
        err = exc.value.errors()[0]
        assert err["loc"] == ("fetch_allow", 1) and repr(typo) in err["msg"], err


# --- the gateway's /v1/formats/{name} --------------------------------------------------------


def rig(reg: Registry, allow: tuple[str, ...]) -> tuple[httpx.AsyncClient, ListProducer]:
    limits = GatewaySettings(max_image_bytes=16 * 1024, fetch_allow=allow)
    producer = ListProducer()
    intake = Intake(reg, producer, MemoryBlobs(), MemoryAcceptances(), limits)
    stations = Stations(intake, reg, Fetcher(limits.fetch_allow, limits.max_image_bytes))
    keys = MemoryKeys({"k-wim": "WIM-G107-1520", "k-cam": "CAM-G107-1520"})
    app = create_app(intake, keys, limits, stations=stations)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    return client, producer


async def test_gateway_takes_a_zhichao_record_with_a_fetched_image(server: str) -> None:
    _Images.files = {"/a.jpg": jpeg(80, 40)}
    client, producer = rig(ZC, ("127.0.0.1",))
    record = zc_record(imgFileList=[f"{server}/a.jpg"])
    async with client:
        res = await client.post("/v1/formats/zhichao", json=record, headers={"X-API-Key": "k-wim"})
        assert res.status_code == 202, res.text
        assert [m.topic for m in producer.sent] == ["road.wim", "road.anpr"]
        capture = json.loads(producer.sent[1].value)
        assert [(i["role"], i["width"], i["height"]) for i in capture["images"]] == [
            ("plate", 64, 32), ("overview", 80, 40)]  # fmt: skip
        # the camera's key may not send the station's records
        res = await client.post("/v1/formats/zhichao", json=record, headers={"X-API-Key": "k-cam"})
        assert res.status_code == 403 and len(producer.sent) == 2
        # a record that cannot be mapped: a dead letter naming the field, and 422
        bad = zc_record(previewCode="9", axle3Weight="x")
        res = await client.post("/v1/formats/zhichao", json=bad, headers={"X-API-Key": "k-wim"})
        assert res.status_code == 422 and res.json()["results"][0]["field"] == "axle3Weight"
        assert producer.sent[-1].topic == "road.wim.dlq"
        # an image from an address that is not allowed: refused, nothing produced
        far = zc_record(previewCode="10", imgFileList=["http://192.0.2.1/a.jpg"])
        sent = len(producer.sent)
        res = await client.post("/v1/formats/zhichao", json=far, headers={"X-API-Key": "k-wim"})
        assert res.status_code == 422, res.text
        wim, cap = res.json()["results"]
        assert wim["status"] == "accepted" and cap["status"] == "refused"
        assert "imgFileList.0" in cap["message"]
        assert [m.topic for m in producer.sent[sent:]] == ["road.wim"]


async def test_gateway_answers_a_kakou_soap_call_in_soap(server: str) -> None:
    _Images.files = {"/kk/20261122/1.jpg": IMAGE, "/kk/20261122/plate.jpg": jpeg(40, 12)}
    client, producer = rig(KK, ("127.0.0.1",))
    body = SOAP.replace(b"http://127.0.0.1:1", server.encode())
    async with client:
        res = await client.post("/v1/formats/kakou", content=body,
                                headers={"X-API-Key": "k-cam", "Content-Type": "text/xml"})  # fmt: skip
        assert res.status_code == 200 and b"<return>1</return>" in res.content
        assert [m.topic for m in producer.sent] == ["road.anpr"]
        res = await client.post("/v1/formats/kakou", content=body.replace(b"430121000106", b"7"),
                                headers={"X-API-Key": "k-cam", "Content-Type": "text/xml"})  # fmt: skip
        assert (
            res.status_code == 500
            and b"<faultcode>soap:Client<" in res.content
            and b"kkbh" in res.content
        )
        assert producer.sent[-1].topic == "road.anpr.dlq"
        # the image server fails: a fault the camera retries on
        _Images.files = {}
        _Images.status = 503
        try:
            res = await client.post("/v1/formats/kakou", content=body,
                                    headers={"X-API-Key": "k-cam", "Content-Type": "text/xml"})  # fmt: skip
        finally:
            _Images.status = 404
        assert res.status_code == 500 and b"<faultcode>soap:Server<" in res.content, res.text


async def test_folder_watcher_takes_files_in_a_station_format(tmp_path: Path) -> None:
    producer = ListProducer()
    limits = GatewaySettings()
    intake = Intake(KK, producer, MemoryBlobs(), MemoryAcceptances(), limits)
    stations = Stations(intake, KK, Fetcher((), limits.max_image_bytes))
    record = {"kkbh": "430121000106", "cdh": "1", "hphm": "湘B54321", "hpys": "2",
              "hpzxd": "0.97", "gcsj": "2026-11-22 08:16:00"}  # fmt: skip
    (tmp_path / "a.json").write_text(json.dumps(record), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps({**record, "kkbh": "1"}), encoding="utf-8")
    watcher = FolderWatcher(tmp_path, intake, device="CAM-G107-1520", settle_s=0,
                            stations=stations, format="kakou")  # fmt: skip
    outcomes = {o.name: o for o in await watcher.scan()}
    assert outcomes["a.json"].accepted and (tmp_path / "done" / "a.json").exists()
    assert not outcomes["b.json"].accepted and (tmp_path / "rejected" / "b.json").exists()
    assert "kkbh" in (tmp_path / "rejected" / "b.reason.txt").read_text(encoding="utf-8")
    assert [m.topic for m in producer.sent] == ["road.anpr", "road.anpr.dlq"]
    assert json.loads(producer.sent[0].value)["confidence"] == 0.97
