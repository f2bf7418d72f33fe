"""The ``update`` bench part: updating a world after one building and one road changed.

The bundled extract with one building made taller and one residential road made primary
(written with pyosmium), 0.003° tiles: ``arnisd update WORLD --osm-file NEW`` against
``arnisd generate`` of the same job, each a fresh process, medians; the update starts each
run from a fresh copy of the old world (copied outside the timing). The result is checked
against the full generation from the new file, byte for byte. With ``--update-sizes``, the
big files' worlds too (``bench.bench_update_big``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.parts import KOUVOLA, PBF, REPO, Figure, PartResult
from bench.procs import median

TILE_DEG = "0.003"
BUILDING_WAY = 424090405                   # a residential building without building:levels
ROAD_WAY = 22731285                        # Suntionkatu, highway=residential


def write_changed_extract(out: Path) -> None:
    """The bundled extract with one building nine levels high and one road made primary."""
    import osmium
    header = osmium.io.Header()         # the extract's bounds: areas cut by them close alike
    with osmium.io.Reader(str(PBF), osmium.osm.NOTHING) as reader:
        header.add_box(reader.header().box())
    with osmium.SimpleWriter(str(out), header=header) as writer:
        for obj in osmium.FileProcessor(str(PBF)):
            if obj.is_way() and obj.id == BUILDING_WAY:
                obj = obj.replace(tags=dict(obj.tags) | {"building:levels": "9"})
            elif obj.is_way() and obj.id == ROAD_WAY:
                obj = obj.replace(tags=dict(obj.tags) | {"highway": "primary"})
            writer.add(obj)


def _arnisd(*args: str) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "arnisd", *args], env=env, capture_output=True,
                          text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"arnisd {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return elapsed, done.stderr


def _generate(osm_file: Path, out: Path, *how: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    return _arnisd("generate", "--osm-file", str(osm_file), "--bbox", KOUVOLA, "--output",
                   str(out), "--chunk-size", TILE_DEG, "--level-name", "kouvola", "--quiet",
                   *how)[0]


def _same_files(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    return files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and all(
        (a / f).read_bytes() == (b / f).read_bytes() for f in files)


def part_update(runs: int, big_sizes: tuple[str, ...] = ()) -> PartResult:
    """The bundled extract's figure, then each of ``big_sizes`` (keys of
    ``bench.bench_big.SIZES``: ``bench.bench_update_big``)."""
    result = PartResult()
    base = Path(tempfile.mkdtemp(prefix="arnisd-bench-update-"))
    try:
        new_pbf = base / "new.osm.pbf"
        write_changed_extract(new_pbf)
        old = base / "old" / "kouvola"
        old.parent.mkdir()
        _generate(PBF, old)
        reference = base / "reference" / "kouvola"
        reference.parent.mkdir()
        full = [_generate(new_pbf, reference) for _ in range(runs)]
        full_in_process = [_generate(new_pbf, reference, "--in-process") for _ in range(runs)]
        updates, drawn = [], ""
        for _ in range(runs):
            world = base / "run" / "kouvola"
            shutil.rmtree(world.parent, ignore_errors=True)
            shutil.copytree(old, world)
            elapsed, stderr = _arnisd("update", str(world), "--osm-file", str(new_pbf))
            updates.append(elapsed)
            drawn = next((line for line in stderr.splitlines() if line.startswith("drew ")), "")
        equal = _same_files(world, reference)
        ratio = median(updates) / median(full)
        result.figures.append(Figure(
            "update after one building and one road changed (0.003° tiles), vs `generate`",
            ratio, "x", "<= 0.3", ratio <= 0.3 and equal,
            f"medians of {runs}: update {median(updates):.2f} s, generate {median(full):.2f} s "
            f"(--in-process {median(full_in_process):.2f} s); {drawn}; the updated world "
            f"{'equals' if equal else 'DIFFERS FROM'} the full generation byte for byte"))
        result.data.update(update_s=updates, generate_s=full, generate_in_process_s=full_in_process)
        if not big_sizes:
            result.lines.append("the 200 and 1,000 km² figures (<= 5 % for a change inside "
                                "1 km²) are measured with --update-sizes 200,1000")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    from bench.bench_update_big import update_big
    for name in big_sizes:
        update_big(name, runs, result)
    return result
