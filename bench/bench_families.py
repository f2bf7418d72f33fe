"""What each element family costs: CPU time of drawing, per family, over the whole bundled extract.

The world is drawn region by region as ``arnisd generate --in-process`` does (prepare once,
then one canvas per region), with a timer around every family's draw call; encoding is timed
separately. CPU time (``time.process_time``), so other load on the machine matters less.

    python bench/bench_families.py [--runs 3] [--interior] [--osm-file FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arnisd.geo.bbox import BBox  # noqa: E402
from arnisd.geo.projection import LocalProjection  # noqa: E402
from arnisd.osm.reader import read_osm_file  # noqa: E402
from arnisd.world import generate  # noqa: E402
from arnisd.world.build import region_windows  # noqa: E402
from arnisd.world.settings import GenerationSettings  # noqa: E402

DATA = ROOT / "data" / "kouvola.osm.pbf"


def one_run(elements, projection, settings) -> tuple[dict[str, float], dict[str, int], float, float, int]:
    spent: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    timed = []
    for family in generate.FAMILIES:
        def draw(ctx, element, _draw=family.draw, _name=family.name):
            started = time.process_time()
            _draw(ctx, element)
            spent[_name] += time.process_time() - started
            calls[_name] += 1
        timed.append(generate.Family(family.name, family.selects, draw, family.sort_key))
    # the window-level steps (not per element), each timed under its own name
    steps = {"draw_ground": "ground", "draw_sea": "sea (coastline)",
             "draw_built_up_ground": "built-up ground"}
    originals = {attr: getattr(generate, attr) for attr in steps}

    def timed_step(attr: str):
        def step(ctx, _run=originals[attr], _name=steps[attr]):
            started = time.process_time()
            _run(ctx)
            spent[_name] += time.process_time() - started
        return step

    original = generate.FAMILIES
    generate.FAMILIES = tuple(timed)
    for attr in steps:
        setattr(generate, attr, timed_step(attr))
    try:
        started = time.process_time()
        draw_list = generate.prepare(elements, projection)
        spent["prepare (project, order, link, coastline)"] = time.process_time() - started
        encode_s, chunks = 0.0, 0
        for _, _, owned in region_windows(projection):
            canvas = generate.draw_window(draw_list, owned, settings)
            started = time.process_time()
            chunks += len(generate.encode_window(canvas, owned))
            encode_s += time.process_time() - started
    finally:
        generate.FAMILIES = original
        for attr, run in originals.items():
            setattr(generate, attr, run)
    return spent, calls, sum(spent.values()), encode_s, chunks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--interior", action="store_true", help="furnish building interiors")
    parser.add_argument("--osm-file", type=Path, default=DATA,
                        help="another OSM file with bounds (e.g. a coast, for the sea's cost)")
    args = parser.parse_args()
    data = read_osm_file(args.osm_file)
    projection = LocalProjection(BBox(*data.bounds))
    settings = GenerationSettings(interior=args.interior)
    runs = [one_run(data.elements, projection, settings) for _ in range(args.runs)]
    names = sorted(runs[0][0], key=lambda n: -statistics.median(r[0].get(n, 0.0) for r in runs))
    chunks = runs[0][4]
    print(f"median of {args.runs} runs, CPU ms over {chunks} chunks{' (interior on)' if args.interior else ''}")
    print(f"| {'family':30s} | draw calls | ms | µs per chunk |")
    print("|---|---|---|---|")
    for name in names:
        ms = statistics.median(r[0].get(name, 0.0) for r in runs) * 1000
        print(f"| {name:30s} | {runs[0][1].get(name, 0):>10d} | {ms:6.0f} | {ms * 1000 / chunks:5.1f} |")
    draw_ms = statistics.median(r[2] for r in runs) * 1000
    encode_ms = statistics.median(r[3] for r in runs) * 1000
    print(f"| {'all drawing':30s} | | {draw_ms:6.0f} | {draw_ms * 1000 / chunks:5.1f} |")
    print(f"| {'encoding (NBT, biomes, zlib)':30s} | | {encode_ms:6.0f} | {encode_ms * 1000 / chunks:5.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
