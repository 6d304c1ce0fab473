"""案卷评查: the self-check of a closed case's electronic file (cases.casefile) against a
checklist, with a score out of 100 and the failing items named, and the yearly sample of files
the legal department reviews.

No national 交通运输 案卷评查 scoring table was found (paperwork review §3.4). The checklist
follows the six points a local 交通局 案卷评查规定 checks every 处罚 file on (处罚主体合法;
事实清楚、证据确凿; 正确适用法律; 符合法定程序; 无超越/滥用职权; 案卷内容、装订质量) and the
review's hard failures: a missing form (立案登记表, 违法行为通知书 + 送达回证, 决定书 + 送达回证,
结案报告), dates out of order, an expired 检定 at capture, no 审核 record. Deadlines: 行政处罚法
Art. 60 (decide within 90 days of 立案: the case store's ``decision_due``). The points are this
project's weighting; an agency may change them. The check reads only the file (its signed
manifest and the evidence package inside), as a reviewer would."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .casefile import read_manifest, verify_casefile

Check = Callable[[dict[str, Any]], bool | None]  # None: not applicable to this file


def _has(*kinds: str) -> Check:
    return lambda f: all(k in f["kinds"] for k in kinds)


# a case that ended before any decision (撤销立案, 移送) has no decision or 90 days to check,
# and one not punished no 违法行为通知书 (it precedes a penalty, Art. 44): those items do not
# apply to its file (older files carry no status: closed)
UNDECIDED = frozenset({"withdrawn", "transferred"})
UNNOTIFIED = UNDECIDED | {"not_punished"}


def _unless(ended: frozenset[str], check: Check) -> Check:
    return lambda f: None if f["facts"].get("status") in ended else check(f)


def _day(f: dict[str, Any], key: str) -> dt.date | None:
    value = f["facts"].get(key)
    return dt.date.fromisoformat(value) if value else None


def _in_order(f: dict[str, Any]) -> bool:
    """立案 ≤ 通知送达 ≤ 陈述期满 ≤ 决定 ≤ 决定送达 ≤ 结案, as far as the file has them."""
    keys = ("filed_on", "notice_served_on", "statement_due", "decided_on",
            "decision_served_on", "closed_on")  # fmt: skip
    days = [d for d in (_day(f, k) for k in keys) if d is not None]
    return days == sorted(days)


def _in_time(f: dict[str, Any]) -> bool:
    decided, due = _day(f, "decided_on"), _day(f, "decision_due")
    return decided is not None and due is not None and decided <= due


def _legal_review(f: dict[str, Any]) -> bool | None:
    return "legal_review" in f["kinds"] if f["facts"].get("major") else None


def _package(f: dict[str, Any], rel: str) -> dict[str, Any]:
    folder: Path = f["folder"]
    doc = next((d for d in f["documents"] if d["kind"] == "evidence"), None)
    if doc is None:
        return {}
    try:
        data = json.loads((folder / doc["path"] / "data" / rel).read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _certified(f: dict[str, Any]) -> bool:
    return _package(f, "device/certificate.json").get("valid_on_pass_date") is True


def _site_enforced(f: dict[str, Any]) -> bool:
    """The point was in enforcement on the pass's day: the device's own 启用 when its registry
    entry has one (events.registry.Device.publicity), else the point's."""
    own = (_package(f, "device/certificate.json").get("registry_entry") or {}).get("publicity")
    start = (own or _package(f, "site/notice.json").get("publicity") or {}).get("enforced_from")
    day = _day(f, "pass_on")
    return bool(start and day and dt.date.fromisoformat(start) <= day)


@dataclass(frozen=True)
class Item:
    code: str
    dimension: str  # 主体 / 事实证据 / 法律适用 / 程序 / 期限 / 案卷质量
    points: int
    text: str  # what the item requires, as the reviewer reads it
    check: Check


CHECKLIST: tuple[Item, ...] = (
    Item("S1", "主体", 5, "处罚主体合法：案卷载明作出处罚的执法机关", lambda f: bool(f["agency"])),
    Item("E1", "事实证据", 10, "案卷和证据包完整、未被改动（签名、每个文件的SHA-256）",
         lambda f: "evidence" in f["kinds"] and not f["integrity"]),
    Item("E2", "事实证据", 5, "称重设备在检测当日检定合格", _certified),
    Item("E3", "事实证据", 5, "监测点（或单独公示的设备）在检测当日已经公示并启用（行政处罚法第四十一条）",
         _site_enforced),
    Item("L1", "法律适用", 10, "载明违法依据和处罚依据",
         lambda f: bool(f["facts"].get("legal_basis") and f["facts"].get("penalty_basis"))),
    Item("P1", "程序", 5, "有立案登记表", _has("filing")),
    Item("P2", "程序", 5, "有违法行为通知书", _unless(UNNOTIFIED, _has("notice"))),
    Item("P3", "程序", 10, "违法行为通知书有送达回证", _unless(UNNOTIFIED, _has("notice_receipt"))),
    Item("P4", "程序", 5, "有行政处罚决定书（或不予行政处罚决定书）", _unless(UNDECIDED, _has("decision"))),
    Item("P5", "程序", 10, "决定书有送达回证", _unless(UNDECIDED, _has("decision_receipt"))),
    Item("P6", "程序", 5, "重大执法决定经法制审核（行政处罚法第五十八条）", _legal_review),
    Item("P7", "程序", 5, "有审核记录", _has("review_log")),
    Item("D1", "期限", 5, "立案、通知送达、陈述期满、决定、决定送达、结案的日期先后有序", _in_order),
    Item("D2", "期限", 10, "自立案之日起九十日内作出决定（行政处罚法第六十条）",
         _unless(UNDECIDED, _in_time)),
    Item("Q1", "案卷质量", 5, "卷内目录、结案报告、备考表齐全", _has("contents", "closing", "note")),
)  # fmt: skip
assert sum(i.points for i in CHECKLIST) == 100


@dataclass(frozen=True)
class Review:
    archive_no: str
    case_id: str
    score: int  # out of 100; an item that does not apply counts as met
    failed: list[Item]


def review_file(folder: Path) -> Review:
    """The 评查 of the case file at ``folder``. Blocking (it hashes the file)."""
    manifest = read_manifest(folder)
    documents = [d for d in manifest.get("documents") or [] if isinstance(d, dict)]  # type: ignore[attr-defined]
    # a document is in the file when its file is there, whatever the manifest lists
    kinds = {d.get("kind") for d in documents if (folder / str(d.get("path"))).exists()}
    f = {"folder": folder, "documents": documents, "kinds": kinds,
         "facts": manifest.get("facts") or {}, "agency": manifest.get("agency"),
         "integrity": verify_casefile(folder)}  # fmt: skip
    failed = [i for i in CHECKLIST if i.check(f) is False]
    return Review(str(manifest.get("archive_no")), str(manifest.get("case_id")),
                  100 - sum(i.points for i in failed), failed)  # fmt: skip


def sample(folders: list[Path], seed: int, n: int = 10) -> list[Path]:
    """The yearly review's random sample: ``n`` files (at least 10; all when there are fewer),
    the same for the same seed and files."""
    ordered = sorted(folders)
    return sorted(random.Random(seed).sample(ordered, min(max(n, 10), len(ordered))))


def casefiles(out: Path) -> list[Path]:
    """The case files under ``out`` (folders with a manifest)."""
    return sorted(p.parent for p in out.glob("*/manifest.json")) if out.is_dir() else []
