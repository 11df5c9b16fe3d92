from datetime import UTC, datetime

import pytest

from modelport.domain.entities import ModelVersion, VersionStatus
from modelport.domain.search import Condition, like_to_regex, parse_filter
from modelport.errors import InvalidFilterError


def version(name: str = "churn", number: int = 1, **fields: object) -> ModelVersion:
    defaults: dict[str, object] = {
        "flavor": "sklearn",
        "status": VersionStatus.ACTIVE,
        "artifact_key": "k",
        "manifest_digest": "d",
        "created_by": "ann",
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return ModelVersion(name=name, version=number, **{**defaults, **fields})  # type: ignore[arg-type]


def test_empty_filter_matches_everything() -> None:
    assert parse_filter(None).matches(version())
    assert parse_filter("   ").conditions == ()


def test_parse_builds_conditions() -> None:
    query = parse_filter("name = 'churn' AND metrics.auc > 0.9 and tags.`team name` != \"x\"")
    assert query.conditions == (
        Condition("name", "=", "churn"),
        Condition("metric", ">", 0.9, key="auc"),
        Condition("tag", "!=", "x", key="team name"),
    )


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("name = churn", True),
        ("name = 'fraud'", False),
        ("name LIKE 'ch%'", True),
        ("name LIKE 'CH%'", False),
        ("name ILIKE 'CH%'", True),
        ("name LIKE 'c_urn'", True),
        ("version >= 2", True),
        ("version < 2", False),
        ("metrics.auc > 0.9", True),
        ("metrics.auc > 0.95", False),
        ("metrics.auc >= 0.93", True),
        ("metrics.missing > 0", False),
        ("tags.team = risk", True),
        ("tags.team != risk", False),
        ("tags.absent != risk", False),
        ("params.C = '1.0'", True),
        ("alias = champion", True),
        ("alias != champion", False),
        ("stage = production", False),
        ("stage != production", True),
        ("status = active", True),
        ("flavor = sklearn AND created_by = ann", True),
        ("flavor = sklearn AND created_by = bob", False),
    ],
)
def test_matches_follows_the_documented_semantics(text: str, matches: bool) -> None:
    candidate = version(
        number=2,
        metrics={"auc": 0.93},
        tags={"team": "risk"},
        params={"C": "1.0"},
        aliases=("champion",),
    )
    assert parse_filter(text).matches(candidate) is matches


@pytest.mark.parametrize("status", list(VersionStatus))
@pytest.mark.parametrize("op", ["=", "!="])
def test_the_archived_stage_is_the_archived_status(status: VersionStatus, op: str) -> None:
    # Archived is a status every archived version has, not an alias on one of them.
    candidate = version(status=status, aliases=("champion",))
    by_status = parse_filter(f"status {op} archived").matches(candidate)
    assert parse_filter(f"stage {op} archived").matches(candidate) is by_status
    assert parse_filter(f"alias {op} archived").matches(candidate) is by_status
    assert Condition("stage", op, "archived").effective() == Condition("status", op, "archived")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = red", "unknown field 'colour'"),
        ("metrics.auc LIKE '0.9%'", "accepts the operators"),
        ("name > 'a'", "accepts the operators"),
        ("metrics.auc > high", "compares with a number"),
        ("version = 1.5", "integer"),
        ("name = a OR name = b", "OR is not supported"),
        ("name =", "FIELD OPERATOR VALUE"),
        ("stage = live", "stage is one of"),
        ("name = 'unterminated", "cannot read"),
        ("alias > x", "accepts the operators"),
    ],
)
def test_bad_filters_explain_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidFilterError, match=message):
        parse_filter(text)


def test_like_escapes_regex_characters() -> None:
    assert like_to_regex("a.b%", ignore_case=False).fullmatch("a.bc")
    assert not like_to_regex("a.b%", ignore_case=False).fullmatch("axbc")
