"""`offsite chaogao`: the 抄告 records (2016 No. 62 Art. 44) and Art. 45's police list.

``list`` every record with its deadline; ``send`` makes the records closed cases lack and
attempts every due one (run it from a timer: a failed record waits its back-off); ``retry ID``
attempts one now; ``region ID PREFIX`` names the home region of a held record; ``flag CASE``
records a non-conforming vehicle; ``police --from --to`` writes the period's list (CSV + PDF)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from events import UsageError

from .config import Settings


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    cg = sub.add_parser("chaogao", help="抄告 to the vehicle's home region (Art. 44), and the "
                        "police list of non-conforming vehicles (Art. 45)")  # fmt: skip
    cgsub = cg.add_subparsers(dest="action", required=True, parser_class=parser_class)
    cgsub.add_parser("list", help="every record: status, deadline, attempts, last error")
    cgsub.add_parser("send", help="make the records closed cases lack; send every due one")
    retry = cgsub.add_parser("retry", help="send one pending record now, whatever its back-off")
    retry.add_argument("chaogao_id")
    region = cgsub.add_parser("region", help="name the home region of a held record")
    region.add_argument("chaogao_id")
    region.add_argument("prefix", help="the plate's prefix, e.g. 湘A")
    region.add_argument("--by", required=True, help="the officer who names it")
    flag = cgsub.add_parser("flag", help="record a vehicle that does not conform (Art. 45)")
    flag.add_argument("case_id")
    flag.add_argument("--kind", required=True, choices=("gb1589", "registration"),
                      help="gb1589: not within GB 1589; registration: not as its 行驶证 says")  # fmt: skip
    flag.add_argument("--reason", required=True, help="what does not conform, in Chinese")
    flag.add_argument("--by", required=True, help="the officer who records it")
    police = cgsub.add_parser("police", help="the period's list for the police (CSV and PDF)")
    police.add_argument("--from", dest="first", required=True, type=dt.date.fromisoformat)
    police.add_argument("--to", dest="last", required=True, type=dt.date.fromisoformat)
    police.add_argument("--out", type=Path, help="folder (default <var_dir>/chaogao)")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from cases import chaogao as cg
    from cases.publication import to_csv
    from console.chaogao import police_pdf, record_closed_case, renderer

    from .console import open_console

    if args.action == "police" and args.last < args.first:
        raise UsageError(f"--to {args.last} is before --from {args.first}")
    console, store = await open_console(settings)
    pool, tz, now = store.pool, console.lifecycle.policy.tz, console.now()
    try:
        if args.action == "list":
            rows = await cg.records(pool)
            today = now.astimezone(tz).date()
            for r in rows:
                late = " OVERDUE" if r["status"] != "sent" and today > r["due"] else ""
                print(f"{r['chaogao_id']}  {r['case_id']}  {r['plate']}  {r['status']}{late}  "
                      f"due {r['due']}  attempts {r['attempts']}  "
                      f"{r['held_reason'] or r['last_error'] or ''}".rstrip())  # fmt: skip
            print(f"{len(rows)} records")
            return 0
        if args.action in ("flag", "region"):
            try:
                if args.action == "flag":
                    await cg.flag_nonconforming(pool, args.case_id, args.kind, args.reason,
                                                args.by, now)  # fmt: skip
                    print(f"recorded: {args.case_id} {cg.NONCONFORMING_KINDS[args.kind]}")
                else:
                    found = await cg.release(pool, args.chaogao_id, args.prefix, args.by,
                                             renderer(console))  # fmt: skip
                    print(f"{args.chaogao_id}: to {found.agency}; pending")
            except LookupError as exc:
                raise UsageError(f"no such case or held record: {exc}") from None
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            return 0
        if args.action == "police":
            rows = await cg.police_report(pool, args.first, args.last, tz)
            out = args.out or settings.var_dir / "chaogao"
            out.mkdir(parents=True, exist_ok=True)
            stem = out / f"police-{args.first}-{args.last}"
            stem.with_suffix(".csv").write_text(
                to_csv(rows, cg.POLICE_COLUMNS), encoding="utf-8")  # fmt: skip
            pdf = await police_pdf(console, settings.evidence.agency, rows, args.first, args.last)
            stem.with_suffix(".pdf").write_bytes(pdf)
            print(f"{len(rows)} vehicles: {stem}.csv, {stem}.pdf")
            return 0
        if console.outbound is None:
            raise UsageError("chaogao.transport is none: nothing can be sent")
        if args.action == "retry":
            try:
                attempts = [await cg.retry_now(pool, console.outbound, args.chaogao_id, now)]
            except LookupError:
                raise UsageError(f"no pending record {args.chaogao_id}") from None
        else:
            for case_id in await cg.unrecorded(pool):
                await record_closed_case(console, case_id)
            attempts = await cg.send_due(pool, console.outbound, now)
        for a in attempts:
            print(f"{a.chaogao_id}  {'sent' if a.ok else 'failed'}  {a.detail}")
        print(f"{sum(a.ok for a in attempts)} sent, {sum(not a.ok for a in attempts)} failed")
        return 0 if all(a.ok for a in attempts) else 1
    finally:
        await store.close()
