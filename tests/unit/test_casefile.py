"""The electronic case file (issue #26 must-have 1): documents in the order of a paper file,
the evidence package inside, an 8-digit archive number, a signed manifest; the offline check
finds a changed byte, a missing or added file and a key the agency did not publish."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from cases.casefile import (
    MANIFEST,
    VOLUMES,
    Document,
    archive_number,
    verify_casefile,
    write_casefile,
)
from cases.review import review_file, sample
from console.notice import render_pdf
from evidence import Keyring, Signer, build_package, generate_key

from .test_evidence import AGENCY, REGISTRY, T0, flip_byte, pipeline

CLOSED = dt.date(2026, 12, 30)
TZ = dt.timezone(dt.timedelta(hours=8))
Made = tuple[Path, Signer, list[Document], dt.date]


@pytest.fixture(scope="module")
async def made(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Signer, list[Document], dt.date]:
    root = tmp_path_factory.mktemp("casefile")
    violations, blobs = await pipeline(root, vehicles=6, seed=5)
    generate_key(root / "k.pem")
    signer = Signer.load(root / "k.pem")
    v = next(v for v in violations if v.outcome == "fine")
    package = build_package(v, REGISTRY, blobs, root / "evidence", signer, AGENCY, created_at=T0)
    docs = [Document(kind, render_pdf(f"<h1>{title}</h1>"))
            for kind, _, title in VOLUMES if kind not in ("evidence", "hearing", "discussion")]  # fmt: skip
    return package, signer, docs, v.ts.astimezone(TZ).date()


def write(made: Made, out: Path, docs: list[Document] | None = None, **facts: object) -> Path:
    package, signer, all_docs, pass_on = made
    return write_casefile(out, archive_no=archive_number(2026, 7), case_id="c-1", agency=AGENCY,
                          closed_on=CLOSED, documents=(all_docs if docs is None else docs)[::-1],
                          package=package, signer=signer,
                          facts={**good_facts(pass_on), **facts})  # fmt: skip


def good_facts(pass_on: dt.date) -> dict[str, object]:
    """A case that kept every date: 立案 the day after the pass, decided within its 90 days."""
    day = pass_on.toordinal()
    on = {k: dt.date.fromordinal(day + n).isoformat() for k, n in (
        ("filed_on", 1), ("notice_served_on", 3), ("statement_due", 10), ("decided_on", 15),
        ("decision_served_on", 16), ("closed_on", 30), ("decision_due", 91))}  # fmt: skip
    return {"pass_on": pass_on.isoformat(), **on, "legal_basis": "《公路法》第五十条",
            "penalty_basis": "2016年第62号令第四十三条", "major": False}  # fmt: skip


def test_archive_number_is_year_and_serial() -> None:
    assert archive_number(2026, 7) == "20260007" and len(archive_number(2027, 9999)) == 8
    with pytest.raises(ValueError):
        archive_number(2026, 10_000)


def test_documents_in_the_order_of_a_paper_file_and_it_verifies(made: Made, tmp_path: Path) -> None:
    folder = write(made, tmp_path / "a")
    assert folder.name == "20260007-c-1"
    manifest = json.loads((folder / MANIFEST).read_bytes())
    kinds = [d["kind"] for d in manifest["documents"]]
    assert kinds == ["contents", "filing", "decision", "decision_receipt", "notice",
                     "notice_receipt", "statements", "evidence", "review_log",
                     "legal_review", "closing", "note"]  # fmt: skip
    assert [d["volume"] for d in manifest["documents"]] == ["正卷"] * 8 + ["副卷"] * 4
    assert (folder / "正卷" / "04-行政处罚决定书送达回证.pdf").read_bytes()[:5] == b"%PDF-"
    assert (folder / "正卷" / "09-证据包" / "signature.ed25519").is_file()
    assert verify_casefile(folder, Keyring({made[1].key_id: made[1].public_key})) == []
    # the same inputs give the same bytes, the zip too
    again = write(made, tmp_path / "b")
    assert (again / MANIFEST).read_bytes() == (folder / MANIFEST).read_bytes()
    zipped = folder.with_suffix(".zip").read_bytes()
    assert again.with_suffix(".zip").read_bytes() == zipped
    with zipfile.ZipFile(folder.with_suffix(".zip")) as z:
        assert f"{folder.name}/{MANIFEST}" in z.namelist()


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (lambda f: flip_byte(f / "正卷" / "03-行政处罚决定书.pdf", 200),
         "正卷/03-行政处罚决定书.pdf: checksum mismatch"),
        (lambda f: flip_byte(f / "正卷" / "09-证据包" / "data" / "images" / "composite.jpg", 300),
         "正卷/09-证据包/data/images/composite.jpg: checksum mismatch"),
        (lambda f: (f / "副卷" / "14-备考表.pdf").unlink(), "副卷/14-备考表.pdf: missing"),
        (lambda f: (f / "副卷" / "99-补充.pdf").write_bytes(b"%PDF-"),
         "副卷/99-补充.pdf: not in the manifest"),
        (lambda f: flip_byte(f / MANIFEST, 30), "the manifest's signature does not verify"),
    ],
)  # fmt: skip
def test_a_changed_byte_fails(made: Made, tmp_path: Path, tamper: Any, problem: str) -> None:
    folder = write(made, tmp_path)
    tamper(folder)
    assert problem in verify_casefile(folder)


def test_a_key_the_agency_did_not_publish_fails(made: Made, tmp_path: Path) -> None:
    folder = write(made, tmp_path)
    generate_key(tmp_path / "other.pem")
    other = Signer.load(tmp_path / "other.pem")
    problems = verify_casefile(folder, Keyring({other.key_id: other.public_key}))
    assert any("not in the agency's keyring" in p for p in problems)


def test_the_self_check_passes_a_complete_file_in_time(made: Made, tmp_path: Path) -> None:
    r = review_file(write(made, tmp_path))
    assert (r.score, [i.code for i in r.failed], r.archive_no) == (100, [], "20260007")


def test_the_self_check_flags_a_missing_receipt_and_a_decision_after_its_deadline(
    made: Made, tmp_path: Path
) -> None:
    docs = [d for d in made[2] if d.kind != "decision_receipt"]
    pass_on = made[3].toordinal()
    late = {k: dt.date.fromordinal(pass_on + n).isoformat() for k, n in (
        ("decided_on", 95), ("decision_served_on", 96), ("closed_on", 100))}  # fmt: skip
    r = review_file(write(made, tmp_path, docs, **late))  # 立案 + 90 days is day 91
    assert [i.code for i in r.failed] == ["P5", "D2"] and r.score == 80
    assert "决定书有送达回证" in r.failed[0].text and "九十日" in r.failed[1].text


def test_the_self_check_flags_a_major_case_without_legal_review_and_a_changed_file(
    made: Made, tmp_path: Path
) -> None:
    folder = write(made, tmp_path, [d for d in made[2] if d.kind != "legal_review"], major=True)
    flip_byte(folder / "正卷" / "09-证据包" / "data" / "images" / "composite.jpg", 300)
    assert [i.code for i in review_file(folder).failed] == ["E1", "P6"]


def test_a_case_that_ended_before_its_decision_is_not_asked_for_one(
    made: Made, tmp_path: Path
) -> None:
    """撤销立案 before the notice: no notice, decision or receipts and no decision day, which
    the self-check does not hold against the file; the same file of a closed case fails them."""
    gone = ("notice", "notice_receipt", "decision", "decision_receipt")
    docs = [d for d in made[2] if d.kind not in gone]
    undecided = {"notice_served_on": None, "statement_due": None, "decided_on": None,
                 "decision_served_on": None}  # fmt: skip
    r = review_file(write(made, tmp_path / "w", docs, status="withdrawn", **undecided))
    assert (r.score, r.failed) == (100, [])
    r = review_file(write(made, tmp_path / "c", docs, status="closed", **undecided))
    assert [i.code for i in r.failed] == ["P2", "P3", "P4", "P5", "D2"]
    # 不予行政处罚 before any notice: its decision and receipt, no notice
    no_notice = [d for d in made[2] if d.kind not in gone[:2]]
    r = review_file(write(made, tmp_path / "n", no_notice, status="not_punished",
                          notice_served_on=None, statement_due=None))  # fmt: skip
    assert r.failed == []


def test_the_self_check_reads_the_device_s_own_start_of_enforcement(
    made: Made, tmp_path: Path
) -> None:
    """A device announced on its own (issue #26 must-have 3) is judged by its own 启用: a file
    whose scale started the day after the pass fails E3 (the edit also fails E1)."""
    package = tmp_path / "package"
    shutil.copytree(made[0], package)
    doc = package / "data" / "device" / "certificate.json"
    data = json.loads(doc.read_bytes())
    late = (made[3] + dt.timedelta(days=1)).isoformat()
    data["registry_entry"]["publicity"] = {"enforced_from": late}
    doc.write_text(json.dumps(data), encoding="utf-8")
    folder = write((package, *made[1:]), tmp_path / "out")  # type: ignore[arg-type]
    assert [i.code for i in review_file(folder).failed] == ["E1", "E3"]
    data["registry_entry"]["publicity"] = {"enforced_from": made[3].isoformat()}
    doc.write_text(json.dumps(data), encoding="utf-8")
    folder = write((package, *made[1:]), tmp_path / "out")  # type: ignore[arg-type]
    assert [i.code for i in review_file(folder).failed] == ["E1"]


def test_the_yearly_sample_is_random_reproducible_and_at_least_ten(tmp_path: Path) -> None:
    files = [tmp_path / f"2026{n:04d}-c" for n in range(1, 31)]
    first = sample(files, seed=2026)
    assert len(first) == 10 and first == sample(files[::-1], seed=2026)
    assert first != sample(files, seed=2027) and first != files[:10]
    assert sample(files[:4], seed=1) == files[:4] and len(sample(files, 1, n=3)) == 10
