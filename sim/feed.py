"""Feeding the raw topics: simulated traffic, recorded files (JSONL records, NMEA logs) and an
AIS receiver feed."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from events import ROAD_ANPR, ROAD_WIM, AnprCapture, UsageError
from events.clock import Clock
from events.stage import Outgoing
from events.water import WATER_CAMERA, AisRaw, ControlSignal
from ingest import paced, read_records
from ingest.ais import raw_message, read_nmea, serve_ais
from offsite.config import Settings, load_waterways, registry_of
from offsite.kafka import ensure_offsite_topics, producer, send_all
from offsite.services import Endpoints, endpoints
from sinks import BlobStore, CaseStore

from .leads import LeadConfig, LeadTruth, simulate_leads
from .road import Pass, SimulationConfig, simulate
from .water import WaterSimConfig, WaterTraffic, WaterTruth, simulate_water


def _progress(total: int) -> Any:
    def report(n: int) -> None:
        print(f"\rsimulating {n}/{total} vehicles", end="", file=sys.stderr, flush=True)

    return report


def make_traffic(settings: Settings, cfg: SimulationConfig) -> list[Pass]:
    blobs = BlobStore(settings.var_dir / "blobs")
    passes = simulate(
        registry_of(settings),
        cfg,
        put_blob=blobs.put if cfg.images else None,
        progress=_progress(cfg.vehicles),
    )
    print(f"\rsimulated {len(passes)} vehicles" + " " * 20, file=sys.stderr)
    return passes


def traffic_messages(
    passes: Sequence[Pass], prefix: str = "", extra: Sequence[AnprCapture] = ()
) -> list[Outgoing]:
    """WIM records and captures interleaved in time order, as a site would send them."""
    timed = [
        (p.wim.ts, 0, Outgoing(prefix + ROAD_WIM, p.wim.site_id.encode(), p.wim.to_json()))
        for p in passes
    ]
    captures = [p.capture for p in passes if p.capture is not None] + list(extra)
    timed += [
        (c.ts, 1, Outgoing(prefix + ROAD_ANPR, c.site_id.encode(), c.to_json())) for c in captures
    ]
    timed.sort(key=lambda t: (t[0], t[1]))
    return [t[2] for t in timed]


def write_truth(path: Path, passes: Sequence[Pass], injected: Sequence[LeadTruth] = ()) -> None:
    """One JSON line per pass, then one per injected lead (``{"lead": …}``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for p in passes:
            f.write(json.dumps(dataclasses.asdict(p.truth), ensure_ascii=False) + "\n")
        for t in injected:
            f.write(json.dumps({"lead": dataclasses.asdict(t)}, ensure_ascii=False) + "\n")


def make_water_traffic(settings: Settings, cfg: WaterSimConfig) -> WaterTraffic:
    blobs = BlobStore(settings.var_dir / "blobs")
    put = blobs.put if cfg.images else None
    traffic = simulate_water(load_waterways(settings.waterways), cfg, put_blob=put)
    print(f"simulated {len(traffic.vessels)} vessels: {len(traffic.raws)} AIS lines, "
          f"{len(traffic.captures)} checkpoint captures", file=sys.stderr)  # fmt: skip
    return traffic


def water_messages(traffic: WaterTraffic, prefix: str = "") -> list[Outgoing]:
    """AIS lines and checkpoint captures interleaved in time order, as they would come."""
    timed = [(r.ts, 0, raw_message(r, prefix)) for r in traffic.raws]
    timed += [(c.ts, 1, Outgoing(prefix + WATER_CAMERA, c.checkpoint_id.encode(), c.to_json()))
              for c in traffic.captures]  # fmt: skip
    timed.sort(key=lambda t: (t[0], t[1]))
    return [t[2] for t in timed]


def write_water_truth(path: Path, truth: Sequence[WaterTruth]) -> None:
    """One JSON line per injected case or look-alike (``"domain": "water"``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for t in truth:
            row = {"domain": "water", **dataclasses.asdict(t)}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def water_truth_path(road_truth: Path) -> Path:
    return road_truth.with_name(f"water-{road_truth.name}")


async def publish(settings: Settings, ep: Endpoints, messages: Sequence[Outgoing]) -> None:
    await ensure_offsite_topics(ep.bootstrap, settings.pipeline.topic_prefix, settings.kafka)
    async with producer(ep.bootstrap) as prod:
        for i in range(0, len(messages), 5000):
            await send_all(prod, list(messages[i : i + 5000]))


def dated(default: dt.datetime, clock: Clock) -> dt.datetime:
    """``default``'s time of day on the day before ``clock()`` (in ``default``'s zone): the
    simulator's traffic dated relative to today, so that it is decided as recent traffic in
    any year (Art. 36's two years run from the pass)."""
    yesterday = clock().astimezone(default.tzinfo).date() - dt.timedelta(days=1)
    return dt.datetime.combine(yesterday, default.timetz())


def shifted_configs(settings: Settings, days: int) -> Settings:
    """``settings`` with the site registry, permits and waterway registry copied to
    ``<var>/dated`` with every date moved by ``days``: the samples in configs/ are dated
    around the simulator's reference day (certificates valid about a year, as JJG 907's
    one-year verification period makes them), so traffic dated ``days`` later meets them
    in the same state — valid, expiring or expired — whatever the year."""

    def move(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: move(v) for k, v in x.items()}
        if isinstance(x, list):
            return [move(v) for v in x]
        return x + dt.timedelta(days=days) if isinstance(x, dt.date) else x

    out = settings.var_dir / "dated"
    out.mkdir(parents=True, exist_ok=True)
    update: dict[str, Path] = {}
    for name in ("registry", "permits", "waterways"):
        path = getattr(settings, name)
        if path is not None and path.is_file():
            data = move(yaml.safe_load(path.read_text("utf-8")))
            update[name] = out / path.name
            update[name].write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return settings.model_copy(update=update)


async def simulate_traffic(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    if args.score:  # a scratch database and topics of its own, so the counts are this run's
        from offsite.testing import isolated_settings

        settings = await isolated_settings(settings, "score", settings.pipeline.verify_plates)
    cfg = SimulationConfig(
        vehicles=args.vehicles,
        seed=args.seed,
        overload_share=args.overload_share,
        images=not args.no_images,
        start=args.start or dated(SimulationConfig.start, settings.pipeline.clock()),
    )
    if drift := getattr(args, "drift", None):
        device, hours, pct = drift
        if (d := registry_of(settings).device(device)) is None or d.type != "wim":
            raise UsageError(f"--drift: {device!r} is not a WIM device of the registry")
        cfg = dataclasses.replace(cfg, drift_device=device, drift_pct=pct,
                      drift_from=cfg.start + dt.timedelta(hours=hours))  # fmt: skip
    passes = await asyncio.to_thread(make_traffic, settings, cfg)  # JPEG work off the loop
    registry = registry_of(settings)
    day = dt.datetime.combine(cfg.start.date() + dt.timedelta(days=1), dt.time(), cfg.start.tzinfo)
    extra, injected = (
        ([], []) if args.no_leads else simulate_leads(registry, LeadConfig(seed=args.seed, day=day))
    )
    truth = args.truth or settings.var_dir / "sim" / "truth.jsonl"
    write_truth(truth, passes, injected)
    summary: dict[str, Any] = {"vehicles": len(passes), "injected_leads": len(injected),
                               "truth": str(truth)}  # fmt: skip
    water = None
    # a caller that does not name the waterway part (it came later) gets the road alone
    if getattr(args, "vessels", 0) and not getattr(args, "no_water", False):
        wcfg = WaterSimConfig(vessels=args.vessels, seed=args.seed, images=not args.no_images,
                              start=dated(WaterSimConfig.start, settings.pipeline.clock()))  # fmt: skip
        water = await asyncio.to_thread(make_water_traffic, settings, wcfg)
        write_water_truth(water_truth_path(truth), water.truth)
        summary |= {"vessels": len(water.vessels), "ais_lines": len(water.raws),
                    "water_truth": str(water_truth_path(truth))}  # fmt: skip
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        captures = [p.capture for p in passes if p.capture is not None] + extra
        for topic, rows in (
            (ROAD_WIM, [p.wim for p in passes]),
            (ROAD_ANPR, sorted(captures, key=lambda c: (c.ts, c.capture_id))),
        ):
            path = args.out / f"{topic}.jsonl"
            path.write_bytes(b"".join(r.to_json() + b"\n" for r in rows))
            summary[topic] = str(path)
        if water is not None:  # an NMEA log per receiver (offsite replay), and the captures
            for rx in sorted({r.receiver_id for r in water.raws}):
                lines = [r.sentence for r in water.raws if r.receiver_id == rx]
                (args.out / f"{rx}.nmea").write_text("\n".join(lines) + "\n", "ascii")
            path = args.out / f"{WATER_CAMERA}.jsonl"
            path.write_bytes(b"".join(c.to_json() + b"\n" for c in water.captures))
            summary[WATER_CAMERA] = str(path)
    else:
        messages = traffic_messages(passes, settings.pipeline.topic_prefix, extra)
        if water is not None:
            messages += water_messages(water, settings.pipeline.topic_prefix)
        await publish(settings, endpoints(settings), messages)
        summary["produced"] = len(messages)
    if args.score:
        from offsite.pipeline import run

        from .score import drift_line, score, score_drift, score_waterways

        print("running the pipeline until every stage has processed its input …", file=sys.stderr)
        await run(settings, endpoints(settings), until_done=True)
        scores = await score(settings, passes, injected)
        if water is not None:
            scores += await score_waterways(settings, water.truth)
        if cfg.drift_device is not None:
            summary["drift"] = drift = await score_drift(settings, passes)
            print(drift_line(drift), file=sys.stderr)
        for s in scores:
            print(s.line(), file=sys.stderr)
        summary["scores"] = {s.detector: {"expected": s.expected, "found": s.found,
                                          "precision": round(s.precision, 4),
                                          "recall": round(s.recall, 4)} for s in scores}  # fmt: skip
    return summary


NMEA_SUFFIXES = (".nmea", ".ais")


def is_nmea(path: Path, topic: str | None) -> bool:
    """Whether ``path`` is an NMEA log (one AIS sentence a line) rather than JSONL records."""
    return topic == "water.ais.raw" or path.suffix.lower() in NMEA_SUFFIXES


def nmea_messages(
    settings: Settings, files: Sequence[Path], receiver_id: str | None, received: dt.datetime
) -> list[Outgoing]:
    """Each line of each NMEA log as a ``water.ais.raw`` message from ``receiver_id`` (default:
    the file's stem), received at ``received`` (tag blocks carry the real times where any)."""
    out = []
    for path in files:
        try:
            raws = list(read_nmea(path, receiver_id or path.stem, received))
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
        out += [raw_message(r, settings.pipeline.topic_prefix) for r in raws]
    return out


async def replay_files(
    settings: Settings,
    files: Sequence[Path],
    topic: str | None,
    speed: float | None,
    *,
    receiver_id: str | None = None,
    received: dt.datetime | None = None,
) -> int:
    """Stream ``files`` into the raw topics: JSONL records byte for byte, NMEA logs (``.nmea``,
    ``.ais`` or ``--topic water.ais.raw``) line by line into ``water.ais.raw``."""
    nmea = [f for f in files if is_nmea(f, topic)]
    when = received or dt.datetime.now(dt.UTC)
    raw = nmea_messages(settings, nmea, receiver_id, when)
    jsonl = [f for f in files if not is_nmea(f, topic)]
    records = [(m, None) for m in raw] + list(
        read_records(jsonl, topic, settings.pipeline.topic_prefix)
    )
    ep = endpoints(settings)
    await ensure_offsite_topics(ep.bootstrap, settings.pipeline.topic_prefix, settings.kafka)
    n = 0
    async with producer(ep.bootstrap) as prod:
        batch: list[Outgoing] = []
        async for msg in paced(records, speed):
            batch.append(msg)
            if speed or len(batch) >= 5000:
                await send_all(prod, batch)
                n += len(batch)
                batch = []
        await send_all(prod, batch)
        n += len(batch)
    return n


async def ingest_ais(
    settings: Settings,
    host: str,
    port: int,
    *,
    udp: bool = False,
    receiver_id: str | None = None,
    stop: asyncio.Event | None = None,
    on_listening: Callable[[tuple[str, int]], None] | None = None,
) -> int:
    """``offsite ingest ais --listen HOST:PORT``: each line a receiver sends (TCP, or UDP
    datagrams) into ``water.ais.raw``, acknowledged by the broker (acks=all) before the next,
    until ``stop`` (default: SIGINT/SIGTERM). Returns the number of lines sent."""
    ep = endpoints(settings)
    prefix = settings.pipeline.topic_prefix
    await ensure_offsite_topics(ep.bootstrap, prefix, settings.kafka)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    sent = 0
    async with producer(ep.bootstrap) as prod:

        async def on_raw(raw: AisRaw) -> None:
            nonlocal sent
            await send_all(prod, [raw_message(raw, prefix)])
            sent += 1

        listener = await serve_ais(on_raw, host, port, receiver_id=receiver_id, udp=udp)
        try:
            if on_listening is not None:
                on_listening(listener.address)
            await stop.wait()
        finally:
            await listener.close()
    return sent


async def ingest_signals(settings: Settings, path: Path) -> int:
    """A control station's signal log, one JSON object a line (events.water.ControlSignal),
    into the case store; a bad line stops it, naming the file and line."""
    signals = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                signals.append(ControlSignal.model_validate_json(line))
            except ValueError as exc:
                raise UsageError(f"{path}:{n}: {exc}".splitlines()[0]) from exc
    store = await CaseStore.connect(endpoints(settings).database_url, size=1)
    try:
        await store.migrate()
        return await store.write_signals(signals)
    finally:
        await store.close()
