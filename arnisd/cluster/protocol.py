"""The wire protocol between coordinator and workers: msgpack maps, validated on the way in.

Every ZeroMQ message is one frame holding one msgpack map with ``t`` (the message type) and
``v`` (the protocol version). ``decode`` refuses anything that is not such a map, has an
unknown type for its direction, another version, missing fields or fields of the wrong
type, or that exceeds the size limits; callers log the ``ProtocolError`` and drop the frame.

Worker to coordinator (``W2C``):
  register   worker_id, caps {os, cpu, memory_mb, slots}, leases [[tile, lease]...], token?,
             session? (the coordinator session its leases came from; claims of another
             session are cancelled), reg? (the registration round: a register resent in the
             same round is a duplicate and changes nothing)
  heartbeat  leases [[tile, lease]...]            (the leases the worker still works on)
  chunks     tile, lease, seq, rx, rz, records [[cx, cz, zlib bytes]...]   (one region;
             seq counts from 0 per stream; after every welcome a worker streams its finished
             leases again from seq 0, and frames are taken strictly in seq order)
  done       tile, lease, count, digest, content_digest, elapsed_s, map? (the tile's map
             piece, ``arnisd.map_piece``, when its work unit asked for one)
  fail       tile, lease, error
  bye        (the worker leaves; its leases go back to the queue at once)
  bench_result  round, host, figures {name: number}, error ("" when the run went well; else
             why there are no figures: busy with a job, interrupted by a lease, a slot failed)

Coordinator to worker (``C2W``):
  welcome    heartbeat_interval_s, liveness, session, keep? [[tile, lease]...] (the claimed
             leases the worker keeps and may stream; others wait for a later welcome or a
             cancel; without keep, every claim is kept)
  reject     reason                               (registration refused; do not retry as is)
  reregister (register again: the coordinator does not know this worker, a new job starts,
             or result frames went missing; no chunks frames until the next welcome)
  lease      tile, lease, unit, extract, elevation, credit
             (unit: the work-unit object, the one description of the job for this tile, see
             ``arnisd.cluster.wire_names``; extract: the tile's OSM extract or nil; elevation:
             the Terrarium tiles it reads [[z, x, y, png]...], nil on flat jobs; lease: the
             lease's fencing number, never reused by this coordinator's journal)
  credit     tile, lease, frames                  (more chunk frames may be sent)
  cancel     tile, lease, reason                  (drop this lease, send nothing more for it)
  heartbeat
  shutdown   (the job is over and this worker should exit)
  bench      round, seconds                       (run the calibration tile in every slot,
             flat and on terrain, ``seconds`` per mode, and answer ``bench_result``)
"""

from __future__ import annotations

from collections.abc import Callable

import msgpack

from arnisd.anvil.chunk_check import looks_like_zlib

PROTOCOL_VERSION = 6

#: Largest frame a coordinator accepts (its socket's MAXMSGSIZE); results are framed far below.
MAX_RESULT_FRAME_BYTES = 8 * 1024 * 1024
#: Chunk bytes a worker puts in one ``chunks`` frame before starting the next.
TARGET_CHUNKS_FRAME_BYTES = 512 * 1024
#: Largest frame a worker accepts (leases carry the tile's extract).
MAX_LEASE_FRAME_BYTES = 256 * 1024 * 1024
#: Upper bounds on a few fields.
MAX_ID_CHARS = 128
MAX_ERROR_CHARS = 4000
MAX_RECORDS_PER_FRAME = 4096
MAX_SLOTS = 1024
MAX_FIGURES = 32
#: The error of a ``fail`` frame for a lease a worker has no room for (not the tile's fault).
NO_FREE_SLOT = "no free slot"
#: Longest array or map in any frame (msgpack unpack limit).
MAX_CONTAINER_ITEMS = max(MAX_RECORDS_PER_FRAME, MAX_SLOTS)


class ProtocolError(ValueError):
    """A frame that does not follow the protocol; it is dropped, never acted on."""


def encode(message: dict) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def make(kind: str, **fields) -> bytes:
    """Encode a message of ``kind`` with the current protocol version."""
    fields["t"] = kind
    fields["v"] = PROTOCOL_VERSION
    return msgpack.packb(fields, use_bin_type=True)


# --- field validators: each returns True when the value is acceptable ------------------------

_INT_BOUND = 2 ** 62


def _int(v) -> bool:
    return type(v) is int and -_INT_BOUND < v < _INT_BOUND


def _nonneg_int(v) -> bool:
    return type(v) is int and 0 <= v < 2 ** 62


def _id(v) -> bool:
    return type(v) is str and 0 < len(v) <= MAX_ID_CHARS


def _text(v) -> bool:
    return type(v) is str and len(v) <= MAX_ERROR_CHARS


def _number(v) -> bool:
    return type(v) in (int, float) and v == v and abs(v) < 1e12


def _digest(v) -> bool:
    return type(v) is bytes and len(v) == 32


def _opt_bytes(v) -> bool:
    return v is None or type(v) is bytes


def _map(v) -> bool:
    return type(v) is dict


def _figures(v) -> bool:
    """A benchmark's figures: a few named numbers."""
    return (type(v) is dict and len(v) <= MAX_FIGURES
            and all(_id(k) and _number(x) for k, x in v.items()))


def _lease_list(v) -> bool:
    return (type(v) is list and len(v) <= MAX_SLOTS
            and all(type(x) is list and len(x) == 2 and _id(x[0]) and _nonneg_int(x[1]) for x in v))


def _caps(v) -> bool:
    return (type(v) is dict and _text(v.get("os")) and _nonneg_int(v.get("cpu"))
            and _nonneg_int(v.get("memory_mb"))
            and type(v.get("slots")) is int and 1 <= v["slots"] <= MAX_SLOTS)


def _records(v) -> bool:
    """A non-empty list of at most ``MAX_RECORDS_PER_FRAME`` [cx, cz, zlib bytes] records.
    Whether the chunks belong to the lease (its tile, the frame's region, each once) is the
    merger's to judge: this is shape only."""
    if type(v) is not list or not 0 < len(v) <= MAX_RECORDS_PER_FRAME:
        return False
    for r in v:
        if type(r) is not list or len(r) != 3:
            return False
        cx, cz, data = r
        if not (type(cx) is int and -_INT_BOUND < cx < _INT_BOUND          # as _int
                and type(cz) is int and -_INT_BOUND < cz < _INT_BOUND
                and type(data) is bytes and looks_like_zlib(data)):
            return False
    return True


def _degrees(v) -> bool:
    return type(v) is dict and all(_number(v.get(k))
                                   for k in ("min_lat", "min_lng", "max_lat", "max_lng"))


def _settings(v) -> bool:
    """The work unit's settings: the schema's four, the rest where present."""
    return (type(v) is dict and _number(v.get("scale")) and v["scale"] > 0
            and type(v.get("terrain")) is bool and type(v.get("interior")) is bool
            and _int(v.get("ground_level"))
            and _nonneg_int(v.get("halo_blocks", 0)) and type(v.get("fill_ground", False)) is bool
            and (v.get("terrain_params") is None or _map(v["terrain_params"])))


def _block_rect(v) -> bool:
    return (type(v) is list and len(v) == 4 and all(_int(b) for b in v)
            and v[0] < v[2] and v[1] < v[3])


def _work_unit(v) -> bool:
    return (type(v) is dict and _id(v.get("chunk_id")) and _degrees(v.get("bbox"))
            and _degrees(v.get("job_bbox")) and _settings(v.get("settings"))
            and _block_rect(v.get("owned_blocks"))
            and ("job_area_blocks" not in v or _block_rect(v["job_area_blocks"])))


def _elevation(v) -> bool:
    """nil, or [[z, x, y, png bytes]...]: the elevation tiles of a lease."""
    return v is None or (type(v) is list and all(
        type(t) is list and len(t) == 4 and all(_nonneg_int(n) for n in t[:3])
        and type(t[3]) is bytes for t in v))


Validator = Callable[[object], bool]

W2C: dict[str, dict[str, Validator]] = {
    "register": {"worker_id": _id, "caps": _caps, "leases": _lease_list},
    "heartbeat": {"leases": _lease_list},
    "chunks": {"tile": _id, "lease": _nonneg_int, "seq": _nonneg_int, "rx": _int, "rz": _int,
               "records": _records},
    "done": {"tile": _id, "lease": _nonneg_int, "count": _nonneg_int, "digest": _digest,
             "content_digest": _digest, "elapsed_s": _number},
    "fail": {"tile": _id, "lease": _nonneg_int, "error": _text},
    "bye": {},
    "bench_result": {"round": _nonneg_int, "host": _text, "figures": _figures, "error": _text},
}
W2C_OPTIONAL: dict[str, dict[str, Validator]] = {"register": {"token": _text, "session": _id,
                                                              "reg": _nonneg_int},
                                                 "done": {"map": _opt_bytes}}

C2W: dict[str, dict[str, Validator]] = {
    "welcome": {"heartbeat_interval_s": _number, "liveness": _nonneg_int, "session": _id},
    "reject": {"reason": _text},
    "reregister": {},
    "lease": {"tile": _id, "lease": _nonneg_int, "unit": _work_unit, "extract": _opt_bytes,
              "elevation": _elevation, "credit": _nonneg_int},
    "credit": {"tile": _id, "lease": _nonneg_int, "frames": _nonneg_int},
    "cancel": {"tile": _id, "lease": _nonneg_int, "reason": _text},
    "heartbeat": {},
    "shutdown": {},
    "bench": {"round": _nonneg_int, "seconds": _number},
}


def _decode(frame: bytes, max_bytes: int, schema: dict[str, dict[str, Validator]],
            optional: dict[str, dict[str, Validator]]) -> dict:
    if len(frame) > max_bytes:
        raise ProtocolError(f"frame of {len(frame)} bytes exceeds {max_bytes}")
    try:
        message = msgpack.unpackb(
            frame, raw=False, strict_map_key=True, use_list=True,
            max_bin_len=max_bytes, max_str_len=max_bytes, max_array_len=MAX_CONTAINER_ITEMS,
            max_map_len=MAX_CONTAINER_ITEMS, max_ext_len=0)
    except Exception as exc:  # msgpack raises many kinds; all mean "not our protocol"
        raise ProtocolError(f"not msgpack: {type(exc).__name__}") from None
    if type(message) is not dict:
        raise ProtocolError("frame is not a map")
    kind = message.get("t")
    if type(message.get("v")) is not int or message["v"] != PROTOCOL_VERSION:   # not True
        raise ProtocolError(f"unsupported protocol version {message.get('v')!r}")
    fields = schema.get(kind) if type(kind) is str else None
    if fields is None:
        raise ProtocolError(f"unknown message type {kind!r}")
    for name, ok in fields.items():
        if name not in message or not ok(message[name]):
            raise ProtocolError(f"{kind}: field {name!r} missing or invalid")
    for name, ok in optional.get(kind, {}).items():
        if name in message and not ok(message[name]):
            raise ProtocolError(f"{kind}: field {name!r} invalid")
    return message


def decode_from_worker(frame: bytes, max_bytes: int = MAX_RESULT_FRAME_BYTES) -> dict:
    """Decode and validate a frame a coordinator received."""
    return _decode(frame, max_bytes, W2C, W2C_OPTIONAL)


C2W_OPTIONAL: dict[str, dict[str, Validator]] = {"welcome": {"keep": _lease_list}}


def decode_from_coordinator(frame: bytes, max_bytes: int = MAX_LEASE_FRAME_BYTES) -> dict:
    """Decode and validate a frame a worker received."""
    return _decode(frame, max_bytes, C2W, C2W_OPTIONAL)
