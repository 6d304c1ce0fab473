"""The Chinese names a person reads for every code the system keeps (violations, lead kinds,
states, plate reads, roles, agencies, task states and results): one table, used by every console
page and document. A code without a name is shown as ``未定名称（code）`` — readable, and a marker
the rendering test (tests/integration/test_plain_chinese.py) fails on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sinks.accounts import ROLES as ACCOUNT_ROLES
from sinks.lifecycle import REJECT_REASONS
from sinks.lifecycle import STATES as CASE_STATES

UNNAMED = "未定名称"


class Names(dict[str, str]):
    """A table of names: a key it lacks gives ``未定名称（key）`` (also through ``get``), never
    a KeyError and never the bare code."""

    def __missing__(self, key: object) -> str:
        return f"{UNNAMED}（{key}）"

    def get(self, key: object, default: Any = None) -> str:
        return self[key]  # type: ignore[index]


def table(*parts: Mapping[str, str]) -> Names:
    out = Names()
    for p in parts:
        out.update(p)
    return out


VIOLATIONS = table({
    "road.overload.gross": "车货总质量超限",
    "road.overload.axle": "轴荷超限",
    "water.ais_off": "未按规定开启AIS",
    "water.identity": "AIS信息不实",
    "water.overdraught": "超核定载重线载运",
    "water.signal": "不遵守交通管制（冲关）",
    "water.dredging": "非法采砂",
})  # fmt: skip
LEAD_KINDS = table({
    "cloned_plate": "套牌车辆",
    "restricted_hours": "限行时段通行",
    "plate_missing": "无牌或号牌未识别（移送公安）",
    "illegal_operation": "非法营运",
    "maritime_referral": "移交海事（未开AIS或身份不符）",
    "device_fault": "设备故障",
    "alert": "告警",
    "case": "案件",
})  # fmt: skip
LEAD_STATES = table({
    "pending_review": "待处理", "dispatched": "已派发", "transferred": "已移送",
    "dismissed": "已排除", "confirmed": "已查实",
})  # fmt: skip
# a case's states: the lifecycle's own names (sinks/lifecycle.py), whatever states it gains
STATES = table(CASE_STATES)
PLATE_STATUS = table({
    "read": "已识别", "no_capture": "未抓拍到号牌", "unreadable": "号牌无法识别",
    "low_confidence": "识别置信度低", "ambiguous": "识别结果不唯一", "uncertain": "识别存疑",
    "invalid": "号牌格式无效", "not_this_vehicle": "号牌非本车",
})  # fmt: skip
ROLES = table(ACCOUNT_ROLES)
AGENCIES = table({
    "police": "公安机关", "road_transport": "道路运输管理机构", "maritime": "海事管理机构",
    "water_resources": "水行政主管部门", "market": "市场监督管理部门",
})  # fmt: skip
OUTCOMES = table({
    "fine": "罚款", "warning": "警告", "no_penalty": "不予处罚", "review": "转人工审核",
    "none": "无违法",
})  # fmt: skip
REASONS = table(REJECT_REASONS)
DEVICE_TYPES = table({
    "wim": "动态称重", "anpr": "车牌识别", "ais_receiver": "AIS基站",
    "vessel_camera": "船舶卡口相机",
})  # fmt: skip
CERT_STATES = table({
    "expired": "已过期", "not_yet": "未生效", "expiring": "即将到期", "valid": "有效",
    "none": "无需检定",
})  # fmt: skip
DEVICE_CONDITIONS = table({
    "silent": "长时间无数据", "certificate_expiring": "检定证书即将到期",
    "certificate_expired": "检定证书已过期或缺失", "clock_skew": "设备时钟偏差过大",
    "drift": "称重漂移（暂停执法）",
})  # fmt: skip
# a waterway detection's measures and evidence (detectors/water_detect.py), as labels
MEASURES = table({
    "distance_m": "距离（米）", "draught_m": "吃水（米）", "dwell_s": "停留时长（秒）",
    "gap_s": "AIS中断时长（秒）", "implied_speed_kn": "推算航速（节）", "kind": "类别",
    "load_line_m": "载重线吃水（米）", "max_speed_kn": "限速（节）",
    "uncertainty_m": "测量不确定度（米）", "window_s": "时间窗（秒）",
    "checkpoint_id": "检查点编号", "hull_confidence": "船名识别置信度",
})  # fmt: skip
FINDINGS = table({
    "pass.hull_name": "过检查点时船体船名与AIS不符", "pass.measured_draught": "过检查点时实测吃水超限",
    "pass.no_ais": "过检查点时无AIS信号", "static.changed": "AIS静态信息变更",
    "static.registry": "AIS信息与登记不符", "static.reported_draught": "AIS报告吃水超限",
    "static.several_mmsi": "一船多个MMSI", "track.gap": "航行中AIS中断",
    "track.two_places": "同一MMSI同时出现在两地", "zone.night_loiter": "夜间在禁采区滞留",
})  # fmt: skip
# discretion baselines whose id is a code rather than the agency's own name for it; any other
# baseline is shown by its id (with its version: what identifies it in an appeal)
# the discretion baselines shipped in configs/baselines/ (an agency's own reads by its id)
RULES = {"water.review": "水路案件人工审核（不拟定罚款）",
         "cn-national-overload": "国家超限运输处罚基准（交通运输部令2016年第62号）",
         "example-proportional": "示例基准（按比例）", "example-round-up": "示例基准（不足1吨按1吨计）"}  # fmt: skip
TASK_STATES = table({
    "open": "待处理", "accepted": "处理中", "done": "已办结", "cancelled": "已撤销",
})  # fmt: skip
TASK_RESULTS = table({
    "found": "已查到", "not_found": "未查到", "case_opened": "已立案", "transferred": "已移送",
})  # fmt: skip
SOURCE_KINDS = table({"lead": "线索", "alert": "告警", "device": "设备故障", "case": "案件"})
PRIORITIES = table({"urgent": "紧急", "high": "高", "normal": "一般", "low": "低"})
SQUAD_LEVELS = table({"brigade": "执法大队", "squad": "执法中队"})
# an evidence package's images by role (evidence/bag.py names them <role>.jpg, <role>-N.jpg)
IMAGE_ROLES = table({
    "composite": "证据合成图（抓拍图像、车牌特写与称重数据）", "front": "车辆前方抓拍",
    "rear": "车辆后方抓拍", "side": "车辆侧面抓拍", "overview": "全景抓拍", "plate": "车牌特写",
})  # fmt: skip


def image_caption(file_name: str) -> str:
    """What an evidence image is, for a document's caption (review D.12), never its file name:
    ``front-1.jpg`` → 车辆前方抓拍（2）."""
    stem = file_name.removesuffix(".jpg")
    role, dash, n = stem.rpartition("-")
    if not (dash and n.isdigit()):
        role, n = stem, ""
    # (not .get: a Names table gives 未定名称 for a missing key)
    caption = IMAGE_ROLES[role] if role in IMAGE_ROLES else "证据图像"  # noqa: SIM401
    return f"{caption}（{int(n) + 1}）" if n else caption


TABLES: dict[str, Names] = {
    "violation": VIOLATIONS, "lead_kind": LEAD_KINDS, "lead_state": LEAD_STATES,
    "state": STATES, "plate_status": PLATE_STATUS, "role": ROLES, "agency": AGENCIES,
    "outcome": OUTCOMES, "reason": REASONS, "device_type": DEVICE_TYPES,
    "cert_state": CERT_STATES, "measure": MEASURES, "finding": FINDINGS, "device_condition": DEVICE_CONDITIONS, "task_state": TASK_STATES, "task_result": TASK_RESULTS,
    "priority": PRIORITIES, "source_kind": SOURCE_KINDS, "squad_level": SQUAD_LEVELS,
    "image_role": IMAGE_ROLES,
}  # fmt: skip


def name(kind: str, code: Any) -> str:
    """The Chinese name of ``code`` in table ``kind`` (a key of TABLES); ``—`` for no code."""
    if code is None or code == "":
        return "—"
    return TABLES[kind][str(code)]


def rule_name(rule: str) -> str:
    return RULES.get(rule, rule)


def yes_no(value: Any) -> str:
    """A boolean as a person reads it: 是 / 否 (None: —)."""
    return "—" if value is None else ("是" if value else "否")


def certificate_fields(doc: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The evidence package's ``data/device/certificate.json`` as labelled fields (label,
    value) — the device and its metrology certificate (计量检定证书), never the raw document."""
    if not doc:
        return []
    cert = doc.get("certificate") or {}
    used = doc.get("as_used_by_detection") or {}
    accuracy = doc.get("accuracy_class")
    rows = [
        ("设备编号", str(doc.get("device_id") or "—")),
        ("设备类型", name("device_type", doc.get("type"))),
        ("已登记", yes_no(doc.get("in_registry"))),
        ("准确度等级", f"{accuracy} 级" if accuracy is not None else "—"),
        ("检定证书编号", str(cert.get("number") or "—")),
        ("检定机构", str(cert.get("issuer") or "—")),
        ("有效期", f"{cert['valid_from']} 至 {cert['valid_until']}" if cert else "—"),
        ("通过当日在有效期内", yes_no(doc.get("valid_on_pass_date"))),
    ]
    if used.get("certificate_number") and used.get("certificate_number") != cert.get("number"):
        rows.append(("检测时记录的证书编号", str(used["certificate_number"])))
    return rows
