"""The per-worker chunks history behind the page's plot: exact while short, bounded when long."""

from __future__ import annotations

from arnisd.cluster.progress_history import OTHERS, ProgressHistory


def test_chunks_land_in_their_workers_bucket():
    history = ProgressHistory(bucket_s=1.0)
    history.record("t1", "a", 10, 0.2)
    history.record("t2", "b", 7, 0.9)
    history.record("t3", "a", 5, 2.5)
    doc = history.as_doc(3.1)
    assert doc == {"bucket_s": 1.0, "elapsed_s": 3.1,
                   "chunks": {"a": [10, 0, 5, 0], "b": [7, 0, 0, 0]}}
    assert history.made_by == {"t1": "a", "t2": "b", "t3": "a"}


def test_a_long_job_keeps_a_bounded_history_with_every_chunk():
    history = ProgressHistory(bucket_s=1.0, max_buckets=16)
    total = 0
    for second in range(1000):                     # one tile a second for 1000 s
        history.record(f"t{second}", f"w{second % 3}", 4, second + 0.5)
        total += 4
    doc = history.as_doc(1000.0)
    assert doc["bucket_s"] == 64.0                 # doubled until 1000 s fit in 16 buckets
    assert all(len(row) <= 16 for row in doc["chunks"].values())
    assert sum(sum(row) for row in doc["chunks"].values()) == total
    assert doc["chunks"]["w0"][0] == 22 * 4        # seconds 0, 3, ..., 63 of the first bucket


def test_workers_beyond_the_limit_share_one_row():
    history = ProgressHistory(max_workers=2)
    for index in range(5):
        history.record(f"t{index}", f"w{index}", 1, 0.0)
    assert history.as_doc(0.5)["chunks"] == {"w0": [1], "w1": [1], OTHERS: [3]}
    assert history.made_by["t4"] == "w4"           # the map still knows who made each tile
