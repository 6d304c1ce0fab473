"""The 通告 of the monitoring points (issue #26 must-have 3; 行政处罚法 Art. 41: 设置地点应当向社会
公布), rendered from the shipped registries by `offsite publish devices` and read back from its
PDF: each point's place, stake, direction, lanes, devices, maker, 检定 body and certificate,
signs, reviews, 公示 period and start date, the office, phone and where the data goes."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pypdf

from console.publicity import notice_html, notice_view, stake
from offsite.cli import main
from offsite.config import load_registry, load_waterways

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = load_registry(ROOT / "configs" / "sites.yaml")
WATERWAYS = load_waterways(ROOT / "configs" / "waterways.yaml")


def words(pdf: bytes) -> str:
    """The PDF's text without white space (table cells wrap)."""
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    return "".join("".join(p.extract_text().split()) for p in pages)


def test_the_notice_names_every_fact_of_each_point(tmp_path: Path) -> None:
    assert main(["publish", "devices", "--out", str(tmp_path)]) == 0
    text = words((tmp_path / "devices-notice.pdf").read_bytes())
    html = (tmp_path / "devices-notice.html").read_text(encoding="utf-8")
    assert text.startswith(words_of("湖南省交通运输综合行政执法局（示例）通告"))
    for site in REGISTRY.sites:
        p = site.publicity
        assert site.name.replace(" ", "") in text and f'id="{site.id}"' in html
        for fact in (str(p.legal_review_on), str(p.technical_review_on), str(p.notice_on),
                     str(p.publicity_until), f"{p.enforced_from}0时起", p.signs):  # fmt: skip
            assert words_of(fact) in text, fact
    assert "G107线K1520+000" in text and "南向，2条车道" in text
    wim = REGISTRY.device("WIM-G107-1520")
    assert wim is not None and wim.certificate is not None
    for fact in (wim.maker, wim.model, wim.certificate.issuer, wim.certificate.number):
        assert words_of(fact) in text, fact
    notice = REGISTRY.notice
    for fact in (notice.office, notice.phone, notice.data_to):
        assert words_of(fact) in text, fact
    for point in (*WATERWAYS.checkpoints, *WATERWAYS.receivers):
        assert point.name in text and str(point.publicity.enforced_from) in text


def words_of(s: str) -> str:
    return "".join(s.split())


def test_a_point_without_a_notice_is_left_out_and_one_not_started_says_so() -> None:
    data = REGISTRY.model_dump()
    data["sites"][0]["publicity"] = {**data["sites"][0]["publicity"], "notice_on": None,
                                     "enforced_from": None}  # fmt: skip
    data["sites"][1]["publicity"] = {**data["sites"][1]["publicity"], "enforced_from": None}
    registry = type(REGISTRY).model_validate(data)
    html = notice_html(notice_view(registry, None, "某执法机关"))
    assert 'id="G107-K1520-S"' not in html and 'id="G312-K1035-E"' in html
    assert html.count("另行通告") == 1 and "水路" not in html


def test_a_device_with_its_own_dates_is_announced_with_them() -> None:
    """A device announced on its own (issue #26 must-have 3) shows its 公示 and 启用 in the 通告;
    the others do not."""
    data = REGISTRY.model_dump()
    site = data["sites"][1]
    own = {**site["publicity"], "notice_on": dt.date(2026, 3, 2),
           "publicity_until": dt.date(2026, 3, 16), "enforced_from": dt.date(2026, 3, 17)}  # fmt: skip
    for d in data["devices"]:
        if d["id"] == site["devices"][0]:
            d["publicity"] = own
    html = notice_html(notice_view(type(REGISTRY).model_validate(data), None, "某执法机关"))
    assert html.count("本设备单独公示") == 1
    assert "公示期2026-03-02至2026-03-16，自2026-03-170时起启用执法" in html


def test_stake_as_a_notice_writes_it() -> None:
    site = REGISTRY.site("S207-K45-N")
    assert site is not None and stake(site) == "S207线K45+000"
    assert stake(site.model_copy(update={"km": 1274.01})) == "S207线K1274+010"
    hub = REGISTRY.site("HUB-CSNZ")
    assert hub is not None and stake(hub) == hub.road


def test_a_package_made_before_the_publicity_block_replays_with_the_same_admissibility() -> None:
    from evidence.replay import _site_registry

    site = REGISTRY.sites[1].model_dump(mode="json")
    del site["publicity"]
    old = {**site, "in_registry": True, "reviewed_on": "2025-12-10",
           "announced_on": "2025-12-20", "signed_on": "2025-12-18"}  # fmt: skip
    (replayed,) = _site_registry(old, None).sites
    assert replayed.not_admissible_on(dt.date(2025, 12, 20)) == []
    assert replayed.not_admissible_on(dt.date(2025, 12, 19))  # before its announcement
    (unsigned,) = _site_registry({**old, "in_registry": True, "signed_on": None}, None).sites
    assert unsigned.not_admissible_on(dt.date(2026, 6, 1))  # a step missing: never
