"""AIS decoding over real recorded NMEA, with the decoded values their projects published."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from functools import reduce
from operator import xor
from pathlib import Path
from typing import Any

import pytest
from pyais import decode as pyais_decode

from events import DeadLetter, derive_id
from events.stage import Incoming
from events.water import AisRaw, AisReport
from ingest.ais import AisDecoder, AisDecodeStage, checksums, nmea_checksum, read_nmea, serve_ais

DATA = Path(__file__).resolve().parents[1] / "data" / "ais"
T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
USED = {1, 2, 3, 5, 18, 19, 24}
DEG = 3e-5  # float32 degrees as gpsd prints them: 7 significant digits


def run(
    lines: list[str], receiver: str = "R1", times: list[dt.datetime] | None = None
) -> tuple[list[AisReport], list[tuple[int, str]]]:
    """Decode ``lines``; reports (validated through the model) and (line index, reason)."""
    decoder = AisDecoder()
    reports, rejected = [], []
    for i, line in enumerate(lines):
        ts = times[i] if times else T0
        report, why = decoder.feed(AisRaw(receiver_id=receiver, ts=ts, sentence=line), i)
        if report is not None:
            reports.append(AisReport.model_validate_json(json.dumps(report, default=str)))
        rejected += why
    return reports, rejected + decoder.flush()


def lines_of(path: Path) -> list[str]:
    return [raw.sentence for raw in read_nmea(path, "R1", T0)]


def nmea(body: str) -> str:
    """``!body*hh`` with the checksum computed here, independently of the decoder."""
    return f"!{body}*{reduce(xor, body.encode(), 0):02X}"


def tag(body: str) -> str:
    return f"\\{body}*{reduce(xor, body.encode(), 0):02X}\\"


def approx(want: float | None, got: float | None, tol: float) -> bool:
    return (want is None and got is None) or (
        want is not None and got is not None and abs(want - got) <= tol
    )


# --- published values: libais typeexamples (gpsd's JSON) --------------------------------------


def test_typeexamples_match_published_values() -> None:
    lines = lines_of(DATA / "libais" / "typeexamples.nmea")
    expected = [
        json.loads(x) for x in (DATA / "libais" / "typeexamples.json").read_text().split("\n") if x
    ]
    assert len(lines) == len(expected) == 26
    decoder = AisDecoder()
    checked = set()
    for i, (line, want) in enumerate(zip(lines, expected, strict=True)):
        report, rejected = decoder.feed(AisRaw(receiver_id="R1", ts=T0, sentence=line), i)
        if want["type"] not in USED:
            assert report is None
            assert len(rejected) == 1 and f"message type {want['type']}" in rejected[0][1]
            continue
        assert rejected == [] and report is not None, line
        got = AisReport.model_validate(report)
        checked.add(want["type"])
        assert (got.mmsi, got.msg_type) == (want["mmsi"], want["type"])
        assert got.time_source == "receiver" and got.ts == T0  # no tag block on these lines
        if want["type"] in (1, 2, 3, 18):
            on_globe = abs(want["lat"]) <= 90 and abs(want["lon"]) <= 180
            # gpsd prints float32: 7 digits, ±1.5e-5° at 161°, about 2 m
            assert approx(want["lat"] if on_globe else None, got.lat, DEG)
            assert approx(want["lon"] if on_globe else None, got.lon, DEG)
            assert approx(want["speed"], got.sog_kn, 1e-4)
            assert approx(want["course"], got.cog_deg, 1e-4)
            assert got.heading_deg == (want["heading"] if want["heading"] <= 359 else None)
        if want["type"] in (1, 2, 3):
            assert got.nav_status == want["status"]
        if want["type"] == 5:
            assert (got.name, got.callsign) == (want["shipname"], want["callsign"])
            assert approx(want["draught"], got.draught_m, 1e-6)
            assert got.length_m == want["to_bow"] + want["to_stern"]
            assert got.beam_m == want["to_port"] + want["to_starboard"]
            assert got.ship_type == want["shiptype"]
        if want["type"] == 24:
            assert (got.part, got.name) == ("A", want["shipname"]) and want["part_num"] == 0
    assert checked == {1, 2, 3, 5, 18, 24}


def test_a_position_off_the_globe_is_null() -> None:
    """typeexamples' type 2 carries lat −101.5 and heading 472 (gpsd prints them as sent):
    not a position, not a heading."""
    lines = lines_of(DATA / "libais" / "typeexamples.nmea")
    reports, _ = run([x for x in lines if ",2T8Mur" in x])
    (got,) = reports
    assert (got.lat, got.lon, got.heading_deg) == (None, None, None)
    assert got.sog_kn == 67.0


def test_positions_marked_not_available_are_null() -> None:
    """A real type 1 from nmea_data_sample.txt whose raw fields are lon 181 / lat 91 / speed
    102.3 (pyais decodes them as sent): null in the report."""
    line = next(x for x in lines_of(DATA / "pyais" / "nmea_data_sample.txt") if "13cc3o?P" in x)
    raw: Any = pyais_decode(line)
    assert (raw.lon, raw.lat, raw.speed) == (181.0, 91.0, 102.3)
    (got,), _ = run([line])
    assert (got.lat, got.lon, got.sog_kn) == (None, None, None)
    assert got.mmsi == raw.mmsi == 247120860


# --- tag blocks: libais tagblock.nmea / .json --------------------------------------------------


def test_tag_block_times_stations_and_an_interleaved_multipart_type_5() -> None:
    lines = lines_of(DATA / "libais" / "tagblock.nmea")
    expected = [
        json.loads(x) for x in (DATA / "libais" / "tagblock.json").read_text().split("\n") if x
    ]
    reports, rejected = run(lines)
    assert rejected == []
    assert len(reports) == len(expected) == 4  # 5 lines: one type 5 in two parts, apart
    for got, want in zip(reports, expected, strict=True):
        assert (got.mmsi, got.msg_type) == (want["mmsi"], want["type"])
        assert got.time_source == "tag_block"
        assert got.ts == dt.datetime.fromisoformat(want["tagblock_timestamp"])
        assert got.station == want["tagblock_station"]
        if want["type"] == 1:
            assert approx(want["lat"], got.lat, DEG) and approx(want["lon"], got.lon, DEG)
            assert approx(want["speed"], got.sog_kn, 1e-4)
            assert (got.heading_deg, got.nav_status) == (want["heading"], want["status"])
    five = next(r for r in reports if r.msg_type == 5)
    assert (five.name, five.callsign) == ("ROSINANTE", "XPD5019")
    assert five.length_m == 9 + 3 and five.beam_m == 3 + 0
    assert five.draught_m is None  # published draught 0.0: not available, never a value
    assert len(five.sentences) == 2


def test_tag_block_time_in_milliseconds_or_seconds() -> None:
    sentence = "!AIVDM,1,1,,B,13F?Vv700<DJuLEtvep`iToV0<00,0*78"
    seconds = tag("s:rORBCOMM104,c:1418172113") + sentence
    millis = tag("s:rORBCOMM104,c:1418172113250") + sentence
    (a, b), rejected = run([seconds, millis])
    assert rejected == []
    assert a.ts == dt.datetime(2014, 12, 10, 0, 41, 53, tzinfo=dt.UTC)
    assert b.ts == a.ts + dt.timedelta(milliseconds=250)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (tag("c:99") + "!AIVDM,1,1,,B,13F?Vv700<DJuLEtvep`iToV0<00,0*78", "plausible"),
        (tag("c:4102444800") + "!AIVDM,1,1,,B,13F?Vv700<DJuLEtvep`iToV0<00,0*78", "plausible"),
        ("\\c:1418172113*00\\!AIVDM,1,1,,B,13F?Vv700<DJuLEtvep`iToV0<00,0*78", "bad tag block"),
        ("\\c:1418172113!AIVDM,1,1,,B,13F?Vv700<DJuLEtvep`iToV0<00,0*78", "not closed"),
        (tag("c1418172113") + "!AIVDM,1,1,,B,13F?Vv700<DJuLEtvep`iToV0<00,0*78", "key:value"),
    ],
)
def test_bad_tag_blocks_are_rejected(line: str, reason: str) -> None:
    """A receive time in 1970, or in 2100 while the receiver's clock says 2026, is corrupt."""
    reports, rejected = run([line])
    assert reports == [] and len(rejected) == 1 and reason in rejected[0][1]


# --- inland extension: DAC 200 FID 10 -----------------------------------------------------------


def test_inland_static_voyage_data_from_real_feeds() -> None:
    """The two inland sentences upstream pyais tests decode (test_msg_type_8_inland, a
    Norwegian public feed, and test_msg_type_8_inland_2), against the values they publish."""
    wants = json.loads((DATA / "pyais" / "inland_dac200_fid10.expected.json").read_text())
    reports, rejected = run(lines_of(DATA / "pyais" / "inland_dac200_fid10.nmea"))
    assert rejected == [] and len(reports) == len(wants) == 2
    for got, want in zip(reports, wants, strict=True):
        assert (got.mmsi, got.msg_type, got.dac, got.fid) == (want["mmsi"], 8, 200, 10)
        assert (got.dac, got.fid) == (want["dac"], want["fid"])
        assert got.beam_m == want["beam"]
        if "length" in want:
            assert got.length_m == want["length"]
        if "loaded" in want:
            assert want["loaded"] == 0 and got.loaded is None  # 0 = not available
    # the Norwegian vessel sends draught 0 and load status 0: unknown, never a value
    assert reports[0].draught_m is None and reports[0].loaded is None


SIX = {
    c: i for i, c in enumerate("@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_ !\"#$%&'()*+,-./0123456789:;<=>?")
}


def inland_sentence(loaded: int, draught_cm: int = 285, eni: str = "02334567") -> str:
    """A DAC 200 FID 10 message packed bit by bit from the standard's table, not by pyais."""
    fields = [(8, 6), (0, 2), (413_123_456, 30), (0, 2), (200, 10), (10, 6)]
    fields += [(SIX[c], 6) for c in eni]
    fields += [
        (1105, 13),
        (114, 10),
        (8010, 14),
        (0, 3),
        (draught_cm, 11),
        (loaded, 2),
        (0, 3),
        (0, 8),
    ]
    bits = "".join(format(v, f"0{n}b") for v, n in fields)
    assert len(bits) == 168
    armour = "".join(
        chr(v + 48 if v < 40 else v + 56)
        for v in (int(bits[i : i + 6], 2) for i in range(0, 168, 6))
    )
    return nmea(f"AIVDM,1,1,,A,{armour},0")


@pytest.mark.parametrize(("code", "state"), [(0, None), (1, "loaded"), (2, "unloaded"), (3, None)])
def test_inland_loaded_flag_follows_the_standard(code: int, state: str | None) -> None:
    """ECE/TRANS/SC.3/176, inland static and voyage data: 1 = loaded, 2 = unloaded,
    0 = not available, 3 = not to be used (gpsd lists 1 and 2 the other way round)."""
    (got,), rejected = run([inland_sentence(code)])
    assert rejected == []
    assert got.loaded == state
    assert (got.eni, got.length_m, got.beam_m, got.eri_type) == ("02334567", 110.5, 11.4, 8010)
    assert got.draught_m == 2.85 and got.draught_resolution_m == 0.01  # centimetres
    assert got.hazard_cones == 0


def test_inland_draught_zero_is_unknown() -> None:
    (got,), _ = run([inland_sentence(1, draught_cm=0)])
    assert got.draught_m is None and got.draught_resolution_m is None


def test_other_binary_broadcasts_are_dead_lettered_with_their_dac_and_fid() -> None:
    lines = lines_of(DATA / "libais" / "typeexamples.nmea")
    _, rejected = run([x for x in lines if ",803Ovrh0EP" in x])
    assert len(rejected) == 1 and "DAC 1 FID 22 is not used" in rejected[0][1]


# --- corrupted lines, garbage, orphans: every rejected line has a reason ------------------------


def corrupt(line: str) -> str:
    """The same line with one payload character changed (the checksum then fails)."""
    head, payload, tail = line.split(",", 5)[:5], line.split(",")[5], line.split(",", 6)[6]
    swapped = ("1" if payload[3] != "1" else "2").join([payload[:3], payload[4:]])
    return ",".join([*head, swapped, tail])


def test_corrupted_real_lines_fail_their_checksum() -> None:
    lines = lines_of(DATA / "libais" / "typeexamples.nmea")[:6]
    reports, rejected = run([corrupt(x) for x in lines])
    assert reports == []
    assert [i for i, _ in rejected] == list(range(6))
    assert all(why.startswith("bad checksum") for _, why in rejected)


def test_mixed_stream_every_line_is_a_report_or_a_reason() -> None:
    """pyais mixed.txt: AIS among GPS sentences, comments, garbage and broken tag blocks."""
    lines = lines_of(DATA / "pyais" / "mixed.txt")
    reports, rejected = run(lines)
    used = sum(len(r.sentences) for r in reports)
    assert used + len(rejected) == len(lines)
    assert len({i for i, _ in rejected}) == len(rejected)  # one reason per line
    reasons = dict(rejected)
    by_line = {lines[i]: why for i, why in reasons.items()}
    assert by_line["foobar"].startswith("not an NMEA sentence")
    assert by_line["IamNotAnAisMessage1111"].startswith("not an NMEA sentence")
    assert by_line["$IIMWV,271.0,R,000.2,N,A*3B"].startswith("not an AIS sentence: $IIMWV")
    assert "comment" in by_line["# Lines with a leading `#` are ignored"]
    # the upstream file's tag blocks with a one-digit checksum, and the sentence with none
    assert sum("tag block checksum *A is not two hex digits" in w for w in reasons.values()) == 3
    # the two-part type 5 from a !SAVDM shore station, joined by its tag-block group
    five = [r for r in reports if r.msg_type == 5]
    assert len(five) == 2 and {len(r.sentences) for r in five} == {2}


def test_a_batch_gives_what_line_by_line_gives() -> None:
    """feed_many (the stage's batches) against feed: the same reports in the same order, the same
    rejected lines with the same reasons, in input order — also when a batch ends between the
    parts of a message and a stale part is given up in the next one."""
    lines = [*lines_of(DATA / "pyais" / "mixed.txt"), *lines_of(DATA / "libais" / "typeexamples.nmea"),
             *lines_of(DATA / "pyais" / "nmea_data_sample.txt")[:300]]  # fmt: skip
    times = [T0 + dt.timedelta(seconds=i / 2) for i in range(len(lines))]
    one = AisDecoder()
    want_reports, want_rejected = [], []
    for i, line in enumerate(lines):
        report, why = one.feed(AisRaw(receiver_id="R1", ts=times[i], sentence=line), i)
        want_reports += [report] if report is not None else []
        want_rejected += why
    many = AisDecoder()
    got_reports, got_rejected = [], []
    for start in range(0, len(lines), 7):  # batches that cut multi-part messages
        batch = [(AisRaw(receiver_id="R1", ts=times[i], sentence=lines[i]), i)
                 for i in range(start, min(start + 7, len(lines)))]  # fmt: skip
        reports, rejected = many.feed_many(batch)
        got_reports += reports
        got_rejected += rejected
    assert len(want_reports) > 200 and len(want_rejected) > 20
    assert any("orphan fragment" in why for _, why in want_rejected)
    assert got_reports == want_reports
    assert got_rejected == want_rejected
    assert many.flush() == one.flush()


def test_sample_file_counts() -> None:
    """pyais messages.ais holds 6 messages (upstream's count) among comments."""
    lines = lines_of(DATA / "pyais" / "messages.ais")
    reports, rejected = run(lines)
    assert len(reports) == 6
    assert all("comment" in why for _, why in rejected) and len(rejected) == len(lines) - 6


def test_long_real_capture_orphans_and_empty_payloads() -> None:
    """nmea_data_sample.txt: 898 sentences, 20 first parts of two-part messages whose second
    part never comes, 100 empty payloads (!AIVDM,1,1,,B,,0*25)."""
    lines = lines_of(DATA / "pyais" / "nmea_data_sample.txt")
    reports, rejected = run(lines)
    reasons = [why for _, why in rejected]
    assert sum(why.startswith("orphan fragment: part 1 of 2") for why in reasons) == 20
    assert sum(why == "empty payload" for why in reasons) == 100
    assert sum(len(r.sentences) for r in reports) + len(rejected) == len(lines)
    assert all(r.msg_type in USED for r in reports)
    assert len({r.report_id for r in reports}) == len(reports)


TYPE5 = [
    "!AIVDM,2,1,1,A,55?MbV02;H;s<HtKR20EHE:0@T4@Dn2222222216L961O5Gf0NSQEp6ClRp8,0*1C",
    "!AIVDM,2,2,1,A,88888888880,2*25",
]


def test_fragments_expire_by_receive_time_not_by_a_timer() -> None:
    s = dt.timedelta(seconds=1)
    (report,), rejected = run(TYPE5, times=[T0, T0 + 5 * s])
    assert rejected == [] and report.name == "EVER DIADEM" and report.ts == T0
    reports, rejected = run(TYPE5, times=[T0, T0 + 11 * s])
    assert reports == []
    assert [i for i, _ in rejected] == [0, 1]
    assert "did not come within 10 s" in rejected[0][1]
    assert "part 2 of 2" in rejected[1][1] and "input ended" in rejected[1][1]


def test_a_new_first_part_with_the_same_sequence_id_makes_the_old_one_an_orphan() -> None:
    (report,), rejected = run([TYPE5[0], TYPE5[0], TYPE5[1]])
    assert report.name == "EVER DIADEM"
    assert rejected == [(0, rejected[0][1])] and "replaced by a new message" in rejected[0][1]


def test_parts_are_reassembled_per_receiver() -> None:
    decoder = AisDecoder()
    feed = [("R1", TYPE5[0]), ("R2", TYPE5[0]), ("R2", TYPE5[1]), ("R1", TYPE5[1])]
    reports = []
    for i, (rid, line) in enumerate(feed):
        report, why = decoder.feed(AisRaw(receiver_id=rid, ts=T0, sentence=line), i)
        assert why == []
        if report is not None:
            reports.append(report)
    assert [r["receiver_id"] for r in reports] == ["R2", "R1"]
    assert len({r["report_id"] for r in reports}) == 2  # same message, two receivers
    # one receiver's first part never joins another's second
    decoder = AisDecoder()
    assert decoder.feed(AisRaw(receiver_id="R1", ts=T0, sentence=TYPE5[0]), 0) == (None, [])
    assert decoder.feed(AisRaw(receiver_id="R2", ts=T0, sentence=TYPE5[1]), 1) == (None, [])
    assert sorted(i for i, _ in decoder.flush()) == [0, 1]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("!AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0*2", "not two hex digits"),
        ("!AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0", "no checksum"),
        ("!AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0*23junk", "after the checksum"),
        (nmea("AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,6"), "fill bits"),
        (nmea("AIVDM,3,4,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0"), "not possible"),
        (nmea("AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip"), "6 fields"),
        (nmea("AIVDM,1,1,,A,13HOI:0P0000~OHLCnHQKwvL05Ip,0"), "6-bit armour"),
        (nmea("GPGGA,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0"), "not an AIS sentence"),
        (nmea("AIVDM,1,1,,A,1,0"), "too short"),
        (nmea("AIVDM,1,1,,A,13HOI:0P0000,0"), "needs at least 168"),
        ("!AIVDM,1,1,,A,13HOI:0P0000VOHLCnHQKwvL05Ip,0*23 \u00e9", "non-ASCII"),
        (nmea("AIVDM,1,1,,B,,0"), "empty payload"),
        ("!AIVDM,1,1,,B,,0*26", "bad checksum: *26 given, *25 computed"),
        (nmea("AIVDM,3,4,,A,,0"), "fragment 4 of 3 is not possible"),
    ],
)
def test_malformed_sentences_say_what_is_wrong(line: str, reason: str) -> None:
    reports, rejected = run([line])
    assert reports == [] and len(rejected) == 1 and reason in rejected[0][1], rejected


def test_checksums_of_a_batch_are_each_lines_own() -> None:
    """The batch's checksums in one numpy pass against a fold per line and the textbook XOR,
    over real sentence bodies and bodies of every length from 1 to 82 characters."""
    bodies = [line[1 : line.index("*")] for line in lines_of(DATA / "pyais" / "mixed.txt")
              if line.startswith("!") and "*" in line]  # fmt: skip
    bodies += ["".join(chr(33 + (7 * i + n) % 90) for i in range(n)) for n in range(1, 83)]
    want = [reduce(xor, b.encode(), 0) for b in bodies]
    assert checksums(bodies) == want == [nmea_checksum(b) for b in bodies]
    assert len(set(want)) > 50 and checksums([]) == []


def test_checksum_digits_in_either_case() -> None:
    line = nmea("AIVDM,1,1,,B,B52K>;h00Fc>jpUlNV@ikwpUoP06,0")
    upper, lower = line, line[:-2] + line[-2:].lower()
    assert upper != lower  # this checksum has a letter in it
    (a,), _ = run([upper])
    (b,), _ = run([lower])
    assert (a.mmsi, a.lat, a.lon) == (b.mmsi, b.lat, b.lon) == (338087471, a.lat, a.lon)


def test_report_ids_are_derive_ids_of_receiver_time_and_sentences() -> None:
    """The decoder builds the id's text itself, for speed; it is ``derive_id``'s all the same,
    for a one-sentence and a two-sentence message."""
    t = dt.datetime(2026, 11, 22, 0, 0, 1, 234567, tzinfo=dt.UTC)
    lines = [nmea("AIVDM,1,1,,B,B52K>;h00Fc>jpUlNV@ikwpUoP06,0"), *TYPE5]
    decoder = AisDecoder()
    reports, rejected = decoder.feed_many(
        [(AisRaw(receiver_id="R7", ts=t, sentence=x), None) for x in lines]
    )
    assert rejected == [] and [len(r["sentences"]) for r in reports] == [1, 2]
    for r in reports:
        assert r["report_id"] == derive_id("ais", "R7", 1795305601234, *r["sentences"])


def test_trailing_receiver_metadata_is_tolerated() -> None:
    """typeexamples lines end ``…,0*30,d-080,S2118,t050056.00,T56.48,r003669946,1325394060``."""
    line = lines_of(DATA / "libais" / "typeexamples.nmea")[1]
    assert ",d-080,S2118," in line
    (got,), _ = run([line])
    assert got.sentences == [line.split(",d-")[0]]


# --- the stage ----------------------------------------------------------------------------------


def incoming(lines: list[str], receiver: str = "R1", start: int = 0) -> list[Incoming]:
    return [
        Incoming("water.ais.raw", 0, start + i, receiver.encode(),
                 AisRaw(receiver_id=receiver, ts=T0, sentence=x).to_json())
        for i, x in enumerate(lines)
    ]  # fmt: skip


async def test_stage_reports_keyed_by_mmsi_and_dead_letters_with_reasons() -> None:
    lines = lines_of(DATA / "pyais" / "mixed.txt")
    batch = [*incoming(lines), Incoming("water.ais.raw", 0, len(lines), b"R1", b"{not json")]
    stage = AisDecodeStage()
    result = await stage.process(batch)
    flushed = await stage.idle()
    reports = [AisReport.model_validate_json(o.value) for o in result.out]
    assert all(o.topic == "water.ais" and o.key == str(r.mmsi).encode()
               for o, r in zip(result.out, reports, strict=True))  # fmt: skip
    letters = [DeadLetter.model_validate_json(d.value) for d in result.dead + flushed.dead]
    assert {d.topic for d in result.dead} == {"water.ais.raw.dlq"}
    assert all(x.reason and x.stage == "ais.decode" for x in letters)
    assert "invalid JSON" in letters[-1].reason or any("invalid JSON" in x.reason for x in letters)
    offsets = sorted(x.offset for x in letters)
    assert len(offsets) == len(set(offsets))
    assert sum(len(r.sentences) for r in reports) + len(letters) == len(batch)


async def test_stage_holds_the_offset_of_a_waiting_part() -> None:
    stage = AisDecodeStage()
    first = await stage.process(incoming(TYPE5[:1], start=40))
    assert first.out == [] and first.dead == []
    assert stage.held() == {("water.ais.raw", 0): 40}
    second = await stage.process(incoming(TYPE5[1:], start=41))
    assert len(second.out) == 1 and stage.held() == {}
    await stage.process(incoming(TYPE5[:1], start=42))
    flushed = await stage.idle()
    assert [DeadLetter.model_validate_json(d.value).offset for d in flushed.dead] == [42]
    assert stage.held() == {}


async def test_same_input_same_output() -> None:
    lines = lines_of(DATA / "libais" / "tagblock.nmea") + lines_of(DATA / "pyais" / "mixed.txt")
    a, b = AisDecodeStage(), AisDecodeStage()
    ra, rb = await a.process(incoming(lines)), await b.process(incoming(lines))
    assert [o.value for o in ra.out] == [o.value for o in rb.out]
    assert [o.value for o in ra.dead] == [o.value for o in rb.dead]


# --- the listener -------------------------------------------------------------------------------


class Collect:
    def __init__(self, n: int) -> None:
        self.n, self.done = n, asyncio.Event()
        self.got: list[AisRaw] = []

    async def __call__(self, raw: AisRaw) -> None:
        self.got.append(raw)
        if len(self.got) >= self.n:
            self.done.set()


async def test_tcp_listener_hands_on_each_line_in_order() -> None:
    collect = Collect(4)
    listener = await serve_ais(collect, "127.0.0.1", 0, clock=lambda: T0, max_line=200)
    try:
        _, writer = await asyncio.open_connection(*listener.address)
        writer.write(TYPE5[0].encode() + b"\r\n\r\n" + TYPE5[1].encode() + b"\n")
        writer.write(b"!" + b"X" * 500 + b"\n")  # too long: cut, then rejected downstream
        writer.write(b"\\c:1418172113*01\\!AIVDM")  # last line without its newline
        writer.close()
        await asyncio.wait_for(collect.done.wait(), 10)  # a guard, not a pause
    finally:
        await listener.close()
    got = collect.got
    assert [r.sentence for r in got[:2]] == TYPE5
    assert len(got[2].sentence) == 200 and got[3].sentence == "\\c:1418172113*01\\!AIVDM"
    assert {r.receiver_id for r in got} == {"tcp:127.0.0.1"} and {r.ts for r in got} == {T0}
    reports, rejected = run([r.sentence for r in got])
    assert len(reports) == 1 and [i for i, _ in rejected] == [2, 3]


async def test_udp_listener_splits_datagrams_into_lines() -> None:
    collect = Collect(2)
    listener = await serve_ais(
        collect, "127.0.0.1", 0, receiver_id="RX-7", udp=True, clock=lambda: T0
    )
    try:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=listener.address
        )
        transport.sendto("\n".join(TYPE5).encode())
        await asyncio.wait_for(collect.done.wait(), 10)
        transport.close()
    finally:
        await listener.close()
    assert [r.sentence for r in collect.got] == TYPE5
    assert {r.receiver_id for r in collect.got} == {"RX-7"}


def test_inland_draught_outside_the_standards_range_is_not_a_value() -> None:
    """1–2000 cm are draughts; "rest not used" (ECE/TRANS/SC.3/176): 2047 is no 20.47 m."""
    (got,), _ = run([inland_sentence(1, draught_cm=2047)])
    assert got.draught_m is None and got.loaded == "loaded"
