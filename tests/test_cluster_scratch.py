"""A worker's finished results in its scratch folder: kept across restarts of the worker,
streamed again from the start, one folder per worker, unreadable or older files dropped."""

from __future__ import annotations

import logging
import zlib

import msgpack

from arnisd.cluster.results import lease_frames
from arnisd.cluster.scratch import FORMAT_VERSION, ResultStore
from arnisd.cluster.worker import results_dir


def _frames():
    chunks = [(cx, cz, zlib.compress(bytes([cx % 256]) * 5000)) for cx in range(40) for cz in range(3)]
    return lease_frames("chunk_1_2", 17, chunks)


def test_results_survive_a_restart_and_stream_from_the_start(tmp_path, caplog):
    frames, count, digest = _frames()
    assert len(frames) > 1
    store = ResultStore(tmp_path / "r")
    piece = b"m" * (3 << 20)          # a tile's map piece (larger than a header used to be)
    kept = store.save("chunk_1_2", 17, "ab" * 16, frames, count, digest, b"c" * 32, 1.5, piece)
    assert kept.path.is_file() and kept.frames_in_memory is None and kept.frame_count == len(frames)
    assert list(kept.frames()) == frames
    assert list(kept.frames()) == list(kept.frames())            # a rewind reads it again
    (tmp_path / "r" / "junk.tmp").write_bytes(b"half")
    (tmp_path / "r" / ("cd" * 16 + ".3.result")).write_bytes(b"\xc1 not msgpack")
    # a result of the first format (the lease number under "attempt") is dropped, with a line
    (tmp_path / "r" / ("ef" * 16 + ".4.result")).write_bytes(msgpack.packb(
        {"tile": "chunk_0_0", "attempt": 4, "session": "ef" * 16, "content_digest": b"e" * 32,
         "elapsed_s": 1.0, "frames": 0}))
    with caplog.at_level(logging.WARNING, logger="arnisd.cluster.scratch"):
        found = ResultStore(tmp_path / "r").load()               # the worker restarted
    assert f"result format 1, this one reads {FORMAT_VERSION}" in caplog.text
    assert [(r.tile, r.lease, r.session, r.content_digest, r.count, r.transfer_digest)
            for r in found] == [("chunk_1_2", 17, "ab" * 16, b"c" * 32, 120, digest)]
    assert list(found[0].frames()) == frames
    assert found[0].map_piece == piece                          # sent with its done frame
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["ab" * 16 + ".17.result"]
    store.delete(found[0])
    assert not any((tmp_path / "r").iterdir())


def test_without_a_folder_results_stay_in_memory(tmp_path):
    store = ResultStore(None)
    frames, count, digest = _frames()
    kept = store.save("t", 1, "ab", frames, count, digest, b"d" * 32, 0.1)
    assert kept.path is None and list(kept.frames()) == frames
    assert store.load() == []


def test_each_worker_has_its_own_results_folder(tmp_path):
    assert results_dir(None, "w") is None
    a, b = results_dir(tmp_path, "attic-pc"), results_dir(tmp_path, "../evil")
    assert a == tmp_path / "results-attic-pc" and b.parent == tmp_path and a != b
