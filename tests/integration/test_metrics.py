"""Metrics of a simulated run (issue #15 item 1): scraped from the process's endpoint while the
pipeline runs and after, parsed with prometheus_client's parser, checked against what was sent,
and linted by `promtool check metrics`."""

from __future__ import annotations

import asyncio
import subprocess
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from offsite import services
from offsite.config import Settings
from offsite.pipeline import run
from sim import SimulationConfig
from sim.feed import make_traffic, publish, traffic_messages
from sinks.metrics import serve
from tests.integration.test_pipeline import cases_of


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip


def total(now: dict, before: dict, name: str, **labels: str) -> float:
    """The increase of ``name`` summed over the series whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v - before.get(k, 0.0) for k, v in now.items()
               if k[0] == name and want <= set(k[1]))  # fmt: skip


async def test_the_endpoint_counts_what_was_sent_and_passes_promtool(
    plain_settings: Settings,
) -> None:
    settings = plain_settings
    ep = services.endpoints(settings)
    prefix = settings.pipeline.topic_prefix
    server = await serve("127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        passes = make_traffic(settings, SimulationConfig(vehicles=150, seed=9, images=False))
        messages = traffic_messages(passes, prefix)
        await publish(settings, ep, messages)
        before = samples((await asyncio.to_thread(get, url + "/metrics"))[1])
        assert (await asyncio.to_thread(get, url + "/readyz"))[0] == 503  # nothing runs yet

        ready_seen = asyncio.Event()
        during: list[dict] = []

        async def watch() -> None:  # while the pipeline runs: ready once every stage joined
            while (await asyncio.to_thread(get, url + "/readyz"))[0] != 200:
                await asyncio.sleep(0.05)
            ready_seen.set()
            during.append(samples((await asyncio.to_thread(get, url + "/metrics"))[1]))

        watcher = asyncio.create_task(watch())
        await run(settings, ep, until_done=True)
        watcher.cancel()
        assert ready_seen.is_set(), "/readyz never said ready during the run"
        # scraped mid-run (unless the run ended between the two requests): every stage ready
        for mid in during:
            ready = {dict(k[1])["stage"] for k, v in mid.items()
                     if k[0] == "offsite_stage_ready" and v == 1}  # fmt: skip
            assert {"detect", "rules", "cases", "evidence", "health"} <= ready
        assert (await asyncio.to_thread(get, url + "/healthz"))[0] == 200

        status, text = await asyncio.to_thread(get, url + "/metrics")
        assert status == 200
        now = samples(text)
        wim = len(passes)
        captures = sum(p.capture is not None for p in passes)
        n = "offsite_messages_in_total"
        assert total(now, before, n, stage="detect", topic=prefix + "road.wim") == wim
        assert total(now, before, n, stage="detect", topic=prefix + "road.anpr") == captures
        assert total(now, before, "offsite_wim_passes_total") == wim
        assert total(now, before, "offsite_wim_passes_total", matched="yes") == captures
        cases = await cases_of(settings)
        assert total(now, before, "offsite_cases_total") == len(cases)
        fined = sum(c["outcome"] == "fine" for c in cases)
        assert total(now, before, "offsite_cases_total", outcome="fine") == fined
        assert total(now, before, "offsite_latency_seconds_count", step="case") == len(cases)
        assert not any("record_id" in dict(k[1]) or "plate" in dict(k[1]) for k in now)
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                              text=True)  # fmt: skip
        assert lint.returncode == 0, lint.stdout + lint.stderr
    finally:
        server.close()
