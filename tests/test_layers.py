"""The layers of docs/ARCHITECTURE.md hold: no module imports from a layer above its own, and
every file the document names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "arnisd"

# lowest first, as the document draws them (bottom row first)
LAYERS = [
    {"geo", "errors", "arrays", "http_fetch", "logs", "library_threads", "progress", "output",
     "png", "zlib_speed", "__init__"},
    {"osm", "elevation", "anvil"},
    {"world", "job", "preview", "region_map", "world_map", "map_tiles", "map_piece",
     "map_pyramid", "map_overview", "map_mosaic", "map_scale"},
    {"cluster"},
    {"service"},
    {"cli", "cli_reference", "commands", "__main__"},
]


def layer_of(top: str) -> int:
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"arnisd.{top} is on no layer of docs/ARCHITECTURE.md")


def imported_tops(path: Path) -> set[str]:
    """First names below ``arnisd`` that ``path`` imports at run time (typing-only imports aside)."""
    tree = ast.parse(path.read_text())
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for n in ast.walk(node))
    tops = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "arnisd":
                tops.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            tops.update(a.name.split(".")[1] for a in node.names
                        if a.name.startswith("arnisd."))
    return tops


def test_no_module_imports_from_a_layer_above_its_own():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        own = layer_of(top)
        for target in imported_tops(path):
            if target != "__version__" and layer_of(target) > own:
                upward.append(f"{path.relative_to(REPO_ROOT)} imports arnisd.{target}")
    assert not upward, upward


def test_the_generator_does_not_import_the_cluster():
    for path in sorted((PACKAGE / "world").rglob("*.py")):
        assert not imported_tops(path) & {"cluster", "service", "commands"}, path


def test_every_file_the_document_names_exists():
    text = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text()
    named = set(re.findall(r"`([a-z_/]+(?:\.py|/))(?::\w+)?`", text))
    assert len(named) > 30, named
    # names are the package's paths, or the repository's where they start at its root
    missing = sorted(name for name in named
                     if not (PACKAGE / name).exists() and not (REPO_ROOT / name).exists())
    assert not missing, missing
