"""Reads blocks of a world with prismarine-provider-anvil (Node), a reader independent of arnisd.

Install once with ``npm ci --prefix tests/js``. Missing node or node_modules is an error, never a
skip: a test that needs the reader must fail loudly where the reader is not installed.

``read_blocks(world_dir, positions)`` returns one entry per position: a dict
``{"name": "rail", "properties": {"shape": "east_west", ...}, "biome": "plains"}`` for a block,
or a str with the reader's error (unknown block name, missing region file, ...).
The world under test is never modified (the Node script reads copies of the region files).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "read_blocks.js"
INSTALL_HINT = "run `npm ci --prefix tests/js` (needs Node 18+ and npm)"
TIMEOUT_S = 120


class ReaderNotInstalled(RuntimeError):
    """Node or the reader's npm packages are missing."""


class ReaderFailed(RuntimeError):
    """The reader crashed, or (for ``read_block_strings``) a position could not be read."""


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise ReaderNotInstalled(f"node is not on PATH; install Node.js, then {INSTALL_HINT}")
    if not (JS_DIR / "node_modules" / "prismarine-provider-anvil").is_dir():
        raise ReaderNotInstalled(f"{JS_DIR / 'node_modules'} is missing; {INSTALL_HINT}")
    return node


def read_blocks(world_dir: Path, positions: Iterable[tuple[int, int, int]],
                version: str = "1.21.4") -> list[str | dict]:
    """The block at each absolute (x, y, z): a dict (name, properties, biome) or an error str."""
    positions = [[int(x), int(y), int(z)] for x, y, z in positions]
    request = {"world": str(Path(world_dir).resolve()), "version": version,
               "positions": positions}
    proc = subprocess.run([node_executable(), str(SCRIPT)], input=json.dumps(request),
                          capture_output=True, text=True, timeout=TIMEOUT_S, cwd=JS_DIR)
    if proc.returncode != 0:
        raise ReaderFailed(f"read_blocks.js exited {proc.returncode}: {proc.stderr.strip()}")
    answers = json.loads(proc.stdout)
    if len(answers) != len(positions):
        raise ReaderFailed(f"asked for {len(positions)} positions, got {len(answers)} answers")
    return [a["error"] if "error" in a else a for a in answers]


def block_string(block: dict) -> str:
    """``minecraft:name[k=v,...]`` with properties sorted, as in a /setblock command."""
    props = ",".join(f"{k}={v}" for k, v in sorted(block["properties"].items()))
    return f"minecraft:{block['name']}" + (f"[{props}]" if props else "")


def read_block_strings(world_dir: Path, positions: Iterable[tuple[int, int, int]],
                       version: str = "1.21.4") -> list[str]:
    """``minecraft:name[props]`` per position; raises ReaderFailed if any position errored."""
    positions = list(positions)
    answers = read_blocks(world_dir, positions, version)
    errors = [(p, a) for p, a in zip(positions, answers) if isinstance(a, str)]
    if errors:
        raise ReaderFailed("; ".join(f"{p}: {a}" for p, a in errors[:5]))
    return [block_string(a) for a in answers]


def world_snapshot(world_dir: Path) -> dict[str, bytes]:
    """Relative path -> content of every file under ``world_dir`` (to prove a read changed nothing)."""
    root = Path(world_dir)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


CHECK_SCRIPT = JS_DIR / "check_world.js"


def check_world(world_dir: Path, data_version: int = 4189) -> dict:
    """Every chunk of a world through ``check_world.js``: strict region framing, zlib, NBT that
    ends exactly where its bytes do, and the fields a 1.21.4 server needs to load a chunk.
    Returns ``{"chunks", "regions", "problems": [...]}`` (at most 200 problems)."""
    proc = subprocess.run([node_executable(), str(CHECK_SCRIPT), str(Path(world_dir).resolve()),
                           str(data_version)],
                          capture_output=True, text=True, timeout=TIMEOUT_S, cwd=JS_DIR)
    if proc.returncode != 0:
        raise ReaderFailed(f"check_world.js exited {proc.returncode}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)
