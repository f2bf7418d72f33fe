"""A world folder's chunks, read back with arnisd's region reader, and the comparison every
cluster test makes against the in-process reference world."""

from __future__ import annotations

from pathlib import Path

from arnisd.anvil.region import read_region


def read_world_chunks(world_dir: Path) -> dict:
    """Every chunk of a world folder, decompressed: {(cx, cz): bytes}."""
    chunks = {}
    for path in sorted((Path(world_dir) / "region").glob("r.*.mca")):
        for key, data in read_region(path).items():
            assert key not in chunks, f"chunk {key} in two region files"
            chunks[key] = data
    return chunks


def assert_same_world(got: dict, expected: dict) -> None:
    """The same chunks, with the same bytes (the first few differences named)."""
    missing = sorted(set(expected) - set(got))[:5]
    extra = sorted(set(got) - set(expected))[:5]
    assert not missing and not extra, f"missing {missing}, extra {extra}"
    different = [k for k in expected if got[k] != expected[k]]
    assert not different, f"{len(different)} chunks differ, e.g. {sorted(different)[:5]}"
