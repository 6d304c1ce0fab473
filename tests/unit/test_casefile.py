"""The electronic case file (issue #26 must-have 1): documents in the order of a paper file,
the evidence package inside, an 8-digit archive number, a signed manifest; the offline check
finds a changed byte, a missing or added file and a key the agency did not publish."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest

from cases.casefile import (
    MANIFEST,
    VOLUMES,
    Document,
    archive_number,
    verify_casefile,
    write_casefile,
)
from console.notice import render_pdf
from evidence import Keyring, Signer, build_package, generate_key

from .test_evidence import AGENCY, REGISTRY, T0, flip_byte, pipeline

CLOSED = dt.date(2026, 12, 30)


@pytest.fixture(scope="module")
async def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Signer, list[Document]]:
    root = tmp_path_factory.mktemp("casefile")
    violations, blobs = await pipeline(root, vehicles=6, seed=5)
    generate_key(root / "k.pem")
    signer = Signer.load(root / "k.pem")
    v = next(v for v in violations if v.outcome == "fine")
    package = build_package(v, REGISTRY, blobs, root / "evidence", signer, AGENCY, created_at=T0)
    docs = [Document(kind, render_pdf(f"<h1>{title}</h1>"))
            for kind, _, title in VOLUMES if kind not in ("evidence", "hearing", "discussion")]  # fmt: skip
    return package, signer, docs


def write(made: tuple[Path, Signer, list[Document]], out: Path) -> Path:
    package, signer, docs = made
    return write_casefile(out, archive_no=archive_number(2026, 7), case_id="c-1", agency=AGENCY,
                          closed_on=CLOSED, documents=docs[::-1], package=package, signer=signer)  # fmt: skip


def test_archive_number_is_year_and_serial() -> None:
    assert archive_number(2026, 7) == "20260007" and len(archive_number(2027, 9999)) == 8
    with pytest.raises(ValueError):
        archive_number(2026, 10_000)


def test_documents_in_the_order_of_a_paper_file_and_it_verifies(made, tmp_path: Path) -> None:
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
def test_a_changed_byte_fails(made, tmp_path: Path, tamper, problem: str) -> None:
    folder = write(made, tmp_path)
    tamper(folder)
    assert problem in verify_casefile(folder)


def test_a_key_the_agency_did_not_publish_fails(made, tmp_path: Path) -> None:
    folder = write(made, tmp_path)
    generate_key(tmp_path / "other.pem")
    other = Signer.load(tmp_path / "other.pem")
    problems = verify_casefile(folder, Keyring({other.key_id: other.public_key}))
    assert any("not in the agency's keyring" in p for p in problems)
