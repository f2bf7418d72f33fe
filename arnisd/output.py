"""The output world folder: built under a temporary name beside it, moved into place at the end.

A failed run leaves no half world behind; an existing non-empty output is refused unless the
user asks to replace it. The temporary folder sits in the same parent so the final rename is
atomic on one file system.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from arnisd.errors import UserError


class OutputError(UserError):
    """The output folder cannot be used."""


def check_output(output: Path, force: bool) -> None:
    """Refuse an output that exists and is not an empty folder, unless ``force``."""
    if output.exists():
        if not output.is_dir():
            raise OutputError(f"output {output} exists and is not a folder")
        if any(output.iterdir()) and not force:
            raise OutputError(f"output {output} already exists and is not empty (use --force to replace it)")
    parent = output.resolve().parent
    if not parent.exists():
        raise OutputError(f"the folder {parent} for the output does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write into {parent}")


def staging_dir(output: Path, suffix: str = "building") -> Path:
    """The temporary folder a world is built in before it replaces ``output``."""
    output = output.resolve()
    return output.parent / f".{output.name}.arnisd-{suffix}"


def promote(staged: Path, output: Path) -> None:
    """Move a finished world into place, replacing (after success only) an older one."""
    output = output.resolve()
    if output.exists():
        trash = output.parent / f".{output.name}.arnisd-old-{os.getpid()}"
        os.replace(output, trash)
        os.replace(staged, output)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staged, output)


def discard(staged: Path) -> None:
    shutil.rmtree(staged, ignore_errors=True)
