"""A spawned worker that is never given work exits by itself, quietly, and removes the
private directory its supervisor can no longer remove."""

from __future__ import annotations

import shutil

from modelport.server.process.channel import make_private_directory, spawn_worker


def test_a_worker_whose_channel_closes_before_its_start_exits_0() -> None:
    directory = make_private_directory()
    try:
        process, channel = spawn_worker(directory)
        channel.close()
        assert process.wait(timeout=60) == 0
        assert not directory.exists()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
