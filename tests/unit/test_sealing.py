"""The agency's seal and PDF signature (cases/sealing.py), offline: a signature verifies against
the agency's certificate only, an unsigned file does not, keys are never overwritten, and the
CLI verb answers a missing file in one line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cases.sealing import (
    Sealer,
    SealError,
    create_key_and_certificate,
    load_certificate,
    seal_svg,
    verify_pdf,
)
from console.notice import render_pdf
from offsite.cli import main

AT = dt.datetime(2026, 12, 7, 8, tzinfo=dt.UTC)
AGENCY = "湖南省交通运输综合行政执法局"


def sealer(folder: Path, agency: str = AGENCY) -> Sealer:
    return Sealer.at_first_start(folder / "k.pem", folder / "c.crt", agency, AT)


def test_only_the_agencys_certificate_verifies_its_signature(tmp_path: Path) -> None:
    ours, theirs = sealer(tmp_path / "a"), sealer(tmp_path / "b", "另一执法机关")
    pdf = render_pdf(f"<p>决定书</p><p class='seal'>{seal_svg(AGENCY)}</p>", ours)
    found = verify_pdf(pdf, load_certificate(tmp_path / "a" / "c.crt"))
    assert found.ok and found.signer == AGENCY and found.signed_at is not None
    other = verify_pdf(pdf, load_certificate(tmp_path / "b" / "c.crt"))
    assert not other.ok and "not the agency's" in " ".join(other.problems)
    assert theirs.name == "另一执法机关"
    unsigned = verify_pdf(render_pdf("<p>决定书</p>"), load_certificate(tmp_path / "a" / "c.crt"))
    assert not unsigned.ok and unsigned.problems == ("no signature in the file",)


def test_a_key_is_never_overwritten_and_a_long_name_fits_the_certificate(tmp_path: Path) -> None:
    long_name = "某某省某某市某某区交通运输综合行政执法大队第一中队（示例）" * 2
    s = sealer(tmp_path, long_name)
    assert long_name.startswith(s.name) and len(s.name.encode()) <= 64
    with pytest.raises(SealError, match="not overwritten"):
        create_key_and_certificate(tmp_path / "k.pem", tmp_path / "c.crt", AGENCY, AT)
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600


def test_verify_of_a_missing_file_exits_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["documents", "verify", str(tmp_path / "none.pdf"), "--cert", "x.crt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read" in err
