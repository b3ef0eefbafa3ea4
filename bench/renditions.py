"""Benchmark: rendition pipeline (``chalicelib.imaging.process_photo``) vs a naive Pillow baseline.

Run: ``.venv/bin/python bench/renditions.py [--rounds 5]``

Input: a deterministic 12-megapixel JPEG (4000×3000, q90, ~5 MB) generated in-process from seeded random
bytes (coarse colour structure + mid-frequency blotches + per-pixel grain, so it does not compress
trivially), with EXIF orientation 6 and GPS tags.

Sides, each run in a fresh subprocess, alternating, ``--rounds`` times:
- ``baseline``: the straightforward correct Pillow code: full decode, ``ImageOps.exif_transpose``,
  ``convert("RGB")``, then for each size a LANCZOS resize from the full image and ``save(JPEG)``.
- ``ours``: ``process_photo`` with the default RENDITIONS (JPEG for all, WebP candidates for thumb/medium).
- ``ours+webp-large``: the same with a WebP candidate for large too (shows what that costs).

Method: the parent stays small (it even generates the input in a child) because Linux carries a
process's ru_maxrss high-water mark across fork+exec into the children. Each child reads the input file, imports its side's modules, then runs the work once, timing it
with ``perf_counter`` (wall) and ``getrusage`` (CPU = user + sys, which is what Lambda's GB-seconds follow
when a function gets one vCPU; libvips may use a second thread, so wall < CPU is possible).
Peak memory: Pillow and libvips allocate in C, so tracemalloc sees nothing; instead each child reports its
``ru_maxrss`` (the kernel's high-water mark of resident memory), and the cost of the work is that minus
the median ``ru_maxrss`` of an "import-only" child of the same side (same imports, same input bytes
read, no work). Reported numbers are medians over rounds. Import time (cold-start cost) is the import-only
child's ``perf_counter`` around the imports.

Goals: speedup = baseline_time / ours_time ≥ 2.5 (wall), memory_ratio = ours_peak / baseline_peak ≤ 0.6.
Nothing here asserts; it prints.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (("large", 2048), ("medium", 1080), ("thumb", 320))
SPEEDUP_GOAL = 2.5
MEMORY_GOAL = 0.6


def make_test_jpeg(width: int = 4000, height: int = 3000, seed: int = 20240601) -> bytes:
    """Deterministic textured 12 MP JPEG with EXIF orientation 6 and GPS tags."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    coarse = Image.frombytes("RGB", (40, 30), rng.randbytes(40 * 30 * 3))
    coarse = coarse.resize((width, height), Image.Resampling.BICUBIC)
    mid = Image.frombytes("RGB", (400, 300), rng.randbytes(400 * 300 * 3))
    mid = mid.resize((width, height), Image.Resampling.BILINEAR)
    grain = Image.frombytes("L", (width, height), rng.randbytes(width * height)).convert("RGB")
    im = Image.blend(Image.blend(coarse, mid, 0.35), grain, 0.10)
    draw = ImageDraw.Draw(im)  # a few hard edges, like real scenes have
    for _ in range(40):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(20, 300)
        draw.ellipse((x - r, y - r, x + r, y + r), outline=tuple(rng.randbytes(3)), width=rng.randrange(2, 12))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° CW to display
    exif[0x010F] = "Photoscale"
    exif[0x0110] = "BenchCam 12"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 22.0, 5.0)
    gps[3], gps[4] = "E", (4.0, 53.0, 30.0)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, exif=exif)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ children


def _child(side: str, path: str, work: bool) -> dict:
    data = Path(path).read_bytes()
    t0 = time.perf_counter()
    if side == "baseline":
        from PIL import Image, ImageOps
    else:
        sys.path.insert(0, str(ROOT))
        from chalicelib import imaging

        imaging._vips()  # the lazy import, so import-only children pay it too
    import_s = time.perf_counter() - t0
    result: dict = {"import_s": import_s}
    if work:
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        if side == "baseline":
            im = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
            sizes = {}
            for name, edge in SIZES:
                scale = edge / max(im.size)
                size = (round(im.width * scale), round(im.height * scale))
                buf = io.BytesIO()
                im.resize(size, Image.Resampling.LANCZOS).save(buf, "JPEG", quality=82)
                sizes[f"{name}.jpg"] = len(buf.getvalue())
        else:
            specs = imaging.RENDITIONS
            if side == "ours+webp-large":
                specs = tuple(imaging.RenditionSpec(s.name, s.max_edge, webp=True) for s in specs)
            photo = imaging.process_photo(data, max_bytes=50 << 20, max_pixels=100_000_000, renditions=specs)
            sizes = {f"{r.name}.{r.extension}": len(r.body) for r in photo.renditions}
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        result.update(
            wall_s=wall,
            cpu_s=(r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime),
            outputs=sizes,
        )
    result["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result


def _run_child(side: str, path: str, work: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", side, "--input", path]
    if work:
        cmd.append("--work")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ report


def _dist_size(*names: str) -> int:
    """Bytes on disk of the files that the named installed distributions own."""
    from importlib import metadata

    total = 0
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for f in dist.files or ():
            p = Path(dist.locate_file(f))
            if p.is_file():
                total += p.stat().st_size
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--child")
    ap.add_argument("--input")
    ap.add_argument("--work", action="store_true")
    ap.add_argument("--make-input")
    args = ap.parse_args()
    if args.make_input:
        Path(args.make_input).write_bytes(make_test_jpeg())
        return
    if args.child:
        print(json.dumps(_child(args.child, args.input, args.work)))
        return

    sides = ("baseline", "ours", "ours+webp-large")
    runs: dict[str, list[dict]] = {s: [] for s in sides}
    idle: dict[str, list[dict]] = {s: [] for s in sides}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "input.jpg")
        # Generated in a child: ru_maxrss survives fork+exec, so the parent must stay small.
        subprocess.run([sys.executable, __file__, "--make-input", path], check=True, cwd=ROOT)
        data = Path(path).read_bytes()
        print(f"input: 4000x3000 JPEG, {len(data):,} bytes; {args.rounds} rounds, fresh subprocess per run")
        for _ in range(args.rounds):
            for side in sides:
                idle[side].append(_run_child(side, path, work=False))
                runs[side].append(_run_child(side, path, work=True))

    med = statistics.median
    stats = {}
    for side in sides:
        base_rss = med(r["maxrss_kb"] for r in idle[side])
        stats[side] = {
            "wall": med(r["wall_s"] for r in runs[side]),
            "cpu": med(r["cpu_s"] for r in runs[side]),
            "peak_mb": med(r["maxrss_kb"] - base_rss for r in runs[side]) / 1024,
            "import_ms": med(r["import_s"] for r in idle[side]) * 1000,
            "outputs": runs[side][-1]["outputs"],
        }
    b = stats["baseline"]
    print()
    print(f"{'side':<17}{'wall s':>8}{'cpu s':>8}{'peak MB':>9}{'import ms':>11}{'speedup':>9}{'cpu-sp':>8}{'mem ratio':>11}")
    for side in sides:
        s = stats[side]
        print(
            f"{side:<17}{s['wall']:>8.3f}{s['cpu']:>8.3f}{s['peak_mb']:>9.1f}{s['import_ms']:>11.1f}"
            f"{b['wall'] / s['wall']:>9.2f}{b['cpu'] / s['cpu']:>8.2f}{s['peak_mb'] / b['peak_mb']:>11.2f}"
        )
    print()
    for side in sides:
        outs = ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in stats[side]["outputs"].items())
        print(f"outputs {side}: {outs}")
    o = stats["ours"]
    speedup = b["wall"] / o["wall"]
    memory_ratio = o["peak_mb"] / b["peak_mb"]
    print()
    print(f"speedup = baseline_time / ours_time = {speedup:.2f} (goal >= {SPEEDUP_GOAL}): "
          f"{'PASS' if speedup >= SPEEDUP_GOAL else 'MISS'}")
    print(f"cpu speedup (1 vCPU view) = {b['cpu'] / o['cpu']:.2f}")
    print(f"memory_ratio = ours_peak / baseline_peak = {memory_ratio:.2f} (goal <= {MEMORY_GOAL}): "
          f"{'PASS' if memory_ratio <= MEMORY_GOAL else 'MISS'}")
    print()
    vips_mb = _dist_size("pyvips", "pyvips-binary") / 1e6
    cffi_mb = _dist_size("cffi", "pycparser") / 1e6
    pillow_mb = _dist_size("pillow") / 1e6
    print(f"package size: pyvips + pyvips-binary = {vips_mb:.1f} MB unpacked "
          f"(+ cffi/pycparser {cffi_mb:.1f} MB, already pulled in by cryptography); "
          f"for comparison Pillow = {pillow_mb:.1f} MB (not needed at runtime)")


if __name__ == "__main__":
    main()
