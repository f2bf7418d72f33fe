"""Strict checks of one region file: its header and sector framing, then every chunk in it.

``check_region(path)`` reads an ``r.X.Z.mca`` file whole and reports, as lines naming the file
(and the chunk x/z): a file that is not whole 4 KiB sectors or is shorter than its 8 KiB
header, chunk locations outside the file or sharing a sector, chunk lengths that overrun their
sectors, compression other than zlib, a missing ``.mcc`` file for an oversized chunk, and
whatever ``chunk_check`` finds in each chunk. It also returns the Adler-32 of every good chunk,
for the content digests a manifest records.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from arnisd.anvil.chunk_check import DATA_VERSION, check_chunk
from arnisd.anvil.grid import CHUNKS_PER_REGION, chunk_at_index
from arnisd.anvil.region import (COMPRESSION_ZLIB, EXTERNAL_FLAG, HEADER_BYTES, SECTOR_BYTES,
                                 external_file_name, region_coords_from_name)

_LOCATIONS = struct.Struct(f">{CHUNKS_PER_REGION}I")
_CHUNK_FRAME = struct.Struct(">IB")


@dataclass(slots=True)
class RegionReport:
    """What ``check_region`` found in one region file."""

    name: str
    problems: list[str] = field(default_factory=list)
    present: list[tuple[int, int]] = field(default_factory=list)        # slots in use
    adlers: dict[tuple[int, int], bytes] = field(default_factory=dict)   # good chunks only

    @property
    def chunks(self) -> int:
        return len(self.present)


def check_region(path: Path, data_version: int = DATA_VERSION) -> RegionReport:
    """Check every chunk of the region file at ``path`` (see the module's docstring)."""
    path = Path(path)
    report = RegionReport(path.name)
    try:
        rx, rz = region_coords_from_name(path)
    except ValueError:
        report.problems.append(f"{path.name}: not a region file name")
        return report
    try:
        data = path.read_bytes()
    except OSError as exc:
        report.problems.append(f"{path.name}: unreadable: {exc.strerror or exc}")
        return report
    if len(data) < HEADER_BYTES or len(data) % SECTOR_BYTES:
        report.problems.append(f"{path.name}: {len(data)} bytes is not a header and whole "
                               f"4 KiB sectors (truncated?)")
        if len(data) < HEADER_BYTES:
            return report
    total_sectors = len(data) // SECTOR_BYTES
    used = bytearray(total_sectors)                 # 1 where a chunk's sectors lie
    for index, location in enumerate(_LOCATIONS.unpack_from(data, 0)):
        if not location:
            continue
        cx, cz = chunk_at_index(rx, rz, index)
        report.present.append((cx, cz))
        where = f"{path.name} {cx},{cz}"
        offset, count = location >> 8, location & 0xFF
        if offset < HEADER_BYTES // SECTOR_BYTES or count == 0 or offset + count > total_sectors:
            report.problems.append(f"{where}: sectors {offset}+{count} outside the file")
            continue
        if any(used[offset:offset + count]):
            report.problems.append(f"{where}: sectors {offset}+{count} shared with another chunk")
        used[offset:offset + count] = b"\x01" * count
        start = offset * SECTOR_BYTES
        length, compression = _CHUNK_FRAME.unpack_from(data, start)
        if compression & EXTERNAL_FLAG:
            payload = _external_payload(path, cx, cz, length, report, where)
            if payload is None:
                continue
            compression &= ~EXTERNAL_FLAG
        else:
            if length < 1 or length + 4 > count * SECTOR_BYTES:
                report.problems.append(f"{where}: length {length} overruns its {count} sectors")
                continue
            payload = data[start + 5:start + 4 + length]
        if compression != COMPRESSION_ZLIB:
            report.problems.append(f"{where}: compression {compression}, expected 2 (zlib)")
            continue
        problems = check_chunk(payload, cx, cz, data_version)
        if problems:
            report.problems.extend(f"{where}: {problem}" for problem in problems)
        else:
            report.adlers[(cx, cz)] = payload[-4:]
    return report


def _external_payload(path: Path, cx: int, cz: int, length: int, report: RegionReport,
                      where: str) -> bytes | None:
    """The bytes of an oversized chunk's ``.mcc`` file, or None (and a problem)."""
    if length != 1:
        report.problems.append(f"{where}: length {length} for a chunk stored in a .mcc file")
        return None
    try:
        return (path.parent / external_file_name(cx, cz)).read_bytes()
    except OSError:
        report.problems.append(f"{where}: {external_file_name(cx, cz)} missing or unreadable")
        return None
