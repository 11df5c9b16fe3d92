"""The staging directory, the journal and the commit of a batch job's output."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pytest

from modelport.batch.commit import (
    JOURNAL,
    SUCCESS,
    SUMMARY,
    JobIdentity,
    Journal,
    Location,
    commit,
    journal_parts,
    prepare,
)
from modelport.batch.parts import PartResult
from modelport.errors import ConflictError

IDENTITY = JobIdentity(
    model_ref="churn@production",
    model="churn",
    version=3,
    manifest_digest="d" * 64,
    inputs=("data/a.parquet", "data/b.parquet"),
    outputs=("prediction",),
    keep=None,
    on_error="fail",
    output_format="parquet",
    chunk_rows=1000,
)


def _part(index: int) -> PartResult:
    return PartResult(f"part-00000-{index * 1000:012d}.parquet", 1000, 998, 2)


def test_a_local_output_is_staged_beside_it_and_appears_only_at_commit(tmp_path: Path) -> None:
    location = Location(str(tmp_path / "scores.parquet"))
    assert location.staging == str(tmp_path / "scores.parquet.modelport-staging")
    assert prepare(location, overwrite=False, resume=False) is None
    location.write_file("part-00000-000000000000.parquet", b"data")
    assert not (tmp_path / "scores.parquet").exists()

    commit(location, {"rows_out": 1})

    output = tmp_path / "scores.parquet"
    assert sorted(p.name for p in output.iterdir()) == [
        SUCCESS,
        SUMMARY,
        "part-00000-000000000000.parquet",
    ]
    assert json.loads((output / SUMMARY).read_text()) == {"rows_out": 1}
    assert not Path(location.staging).exists()


def test_commit_replaces_an_older_output_whole(tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / "part-old.parquet").write_bytes(b"old")
    location = Location(str(output))
    prepare(location, overwrite=True, resume=False)
    assert (output / "part-old.parquet").exists()  # readable until the commit
    location.write_file("part-new.parquet", b"new")

    commit(location, {})

    assert sorted(p.name for p in output.iterdir()) == [SUCCESS, SUMMARY, "part-new.parquet"]
    assert not (tmp_path / "out.modelport-old").exists()


def test_prepare_refuses_what_it_was_not_told_to_replace(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(ConflictError, match="exists; pass --overwrite"):
        prepare(Location(str(tmp_path / "out")), overwrite=False, resume=False)
    with pytest.raises(ConflictError, match="nothing to resume"):
        prepare(Location(str(tmp_path / "out")), overwrite=False, resume=True)

    interrupted = Location(str(tmp_path / "other"))
    Journal(interrupted, IDENTITY, {}).flush()
    assert prepare(interrupted, overwrite=False, resume=False) is None  # nothing to keep
    Journal(interrupted, IDENTITY, {_part(0).name: _part(0)}).flush()
    with pytest.raises(ConflictError, match="interrupted run left .*other.modelport-staging"):
        prepare(interrupted, overwrite=False, resume=False)
    assert prepare(interrupted, overwrite=True, resume=False) is None
    assert not Path(interrupted.staging).exists()  # started again from nothing


def test_the_journal_is_what_resume_reads(tmp_path: Path) -> None:
    location = Location(str(tmp_path / "out"))
    now = [0.0]
    journal = Journal(location, IDENTITY, {}, interval=2.0, clock=lambda: now[0])

    now[0] = 0.5
    journal.add(_part(0))  # not 2 s since the start: not written yet
    assert location.read_journal() is None
    now[0] = 1.0
    journal.add(_part(1))
    now[0] = 5.0
    journal.add(_part(2))  # written, with every part so far
    document = location.read_journal()
    assert document is not None and document["status"] == "running"
    assert JobIdentity.from_dict(document["job"]) == IDENTITY
    assert journal_parts(document) == {p.name: p for p in (_part(0), _part(1), _part(2))}

    journal.flush(status="failed", error="row 5 is bad")
    resumed = prepare(location, overwrite=False, resume=True)
    assert resumed is not None and resumed["status"] == "failed"
    assert resumed["error"] == "row 5 is bad"


def test_an_unreadable_journal_is_said_so(tmp_path: Path) -> None:
    location = Location(str(tmp_path / "out"))
    location.write_file(JOURNAL, b"{not json")
    with pytest.raises(ConflictError, match="cannot read the journal"):
        prepare(location, overwrite=False, resume=True)


def test_identity_differences_name_what_changed() -> None:
    other = JobIdentity.from_dict(
        IDENTITY.to_dict() | {"on_error": "skip", "keep": ["customer_id"], "version": 4}
    )
    assert other.differences(IDENTITY) == [
        "keep was None, now ['customer_id']",
        "on_error was 'fail', now 'skip'",
    ]  # the version is checked apart: a moved alias has its own message
    assert IDENTITY.differences(IDENTITY) == []
    more = JobIdentity.from_dict(
        IDENTITY.to_dict() | {"inputs": ["data/b.parquet", "data/c.parquet", "data/d.parquet"]}
    )
    assert more.differences(IDENTITY) == [
        "2 input files then, 3 now, new: 'data/c.parquet' and 1 more, gone: 'data/a.parquet'"
    ]


def test_on_an_object_store_success_is_written_last_in_the_output_itself() -> None:
    fs = fsspec.filesystem("memory")
    location = Location("memory://commit-test/out")
    try:
        assert location.staging == "memory://commit-test/out"
        assert prepare(location, overwrite=False, resume=False) is None
        Journal(location, IDENTITY, {}).flush()
        location.write_file("part-00000-000000000000.parquet", b"data")
        assert not fs.exists("/commit-test/out/_SUCCESS")
        # An interrupted run there is not an output to refuse but a run to resume.
        assert prepare(Location("memory://commit-test/out"), overwrite=False, resume=True)

        commit(location, {"rows_out": 1})

        assert fs.exists("/commit-test/out/_SUCCESS")
        assert fs.cat_file("/commit-test/out/_modelport.json") == b'{\n  "rows_out": 1\n}'
        with pytest.raises(ConflictError, match="exists"):
            prepare(Location("memory://commit-test/out"), overwrite=False, resume=False)
        prepare(Location("memory://commit-test/out"), overwrite=True, resume=False)
        assert not fs.exists("/commit-test/out")  # no rename there: the old parts go first
    finally:
        if fs.exists("/commit-test"):
            fs.rm("/commit-test", recursive=True)
