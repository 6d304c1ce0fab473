"""Evidence packages per second, and the JPEG work as a ratio to a bare cv2.imencode loop.

python -m bench.evidence [VIOLATIONS]

Real violations (simulated overloads with images, through the detection and rules stages in
memory) are packaged into var/bench/ (a real disk: every file is fsynced). Then, on the same
violations: the composite alone (decode the photos, lay out, draw the caption, encode), and a
bare ``cv2.imencode`` loop over the very frames the composites hold, at the same quality.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from events import Violation
from evidence import Signer, build_package, generate_key, render_composite
from evidence.bag import _images
from offsite.config import load_registry
from offsite.testing import violations_in_memory
from sim import SimulationConfig
from sinks.blobs import BlobStore

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = load_registry(ROOT / "configs" / "sites.yaml")
BASELINES = {"national": ROOT / "configs" / "baselines" / "national.yaml"}


async def violations(n: int, blobs: BlobStore) -> list[Violation]:
    cfg = SimulationConfig(vehicles=int(n * 1.4), seed=11, overload_share=1.0)
    out = await violations_in_memory(REGISTRY, BASELINES, cfg, blobs.put)
    assert len(out) >= n, f"only {len(out)} violations"
    return out[:n]


def main(n: int) -> None:
    work = ROOT / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="evidence-", dir=work))
    try:
        blobs = BlobStore(tmp / "blobs")
        vs = asyncio.run(violations(n, blobs))
        generate_key(tmp / "key.pem")
        signer = Signer.load(tmp / "key.pem")
        agency = "湖南省交通运输综合行政执法局"

        t0 = time.perf_counter()
        paths = [build_package(v, REGISTRY, blobs, tmp / "out", signer, agency) for v in vs]
        build = time.perf_counter() - t0

        images = [{k.removesuffix(".jpg"): d for k, d in _images(v, blobs, "").items()} for v in vs]
        t0 = time.perf_counter()
        for v, imgs in zip(vs, images, strict=True):
            render_composite(v, REGISTRY, imgs)
        composite = time.perf_counter() - t0

        frames = []  # the very frames the composites hold
        for p in paths:
            data = (p / "data/images/composite.jpg").read_bytes()
            frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            assert frame is not None
            frames.append(frame)
        t0 = time.perf_counter()
        for f in frames:
            cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])
        bare = time.perf_counter() - t0

        h, w = frames[0].shape[:2]
        print(f"{n} violations, composite {w}×{h}, packages under {tmp / 'out'} (fsynced)")
        print(f"packages/s             {n / build:10.1f}   ({1000 * build / n:.1f} ms each)")
        print(
            f"composites/s           {n / composite:10.1f}   ({1000 * composite / n:.1f} ms each)"
        )
        print(f"bare cv2.imencode/s    {n / bare:10.1f}   ({1000 * bare / n:.1f} ms each)")
        print(f"composite share of a package build       {composite / build:6.2f}")
        print(f"ratio composites/s ÷ bare imencode/s     {bare / composite:6.2f}")
        print(f"ratio packages/s ÷ bare imencode/s       {bare / build:6.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
