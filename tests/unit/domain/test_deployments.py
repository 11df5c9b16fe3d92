"""The pure deployment changes: canary, A/B, shadow, weights, promote, roll back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from modelport.domain.deployments import (
    Arm,
    ArmRole,
    Deployment,
    Sticky,
    StickyKind,
    new_deployment,
    parse_sticky,
    promoted,
    rolled_back,
    validate_deployment,
    with_ab,
    with_canary,
    with_shadow,
    with_weight,
    without_arm,
)
from modelport.errors import InvalidArgumentError, InvalidNameError


def churn(version: int = 3) -> Deployment:
    return new_deployment("churn", "churn", version)


def arms(deployment: Deployment) -> list[tuple[str, int, float]]:
    return [(a.name, a.version, a.weight) for a in deployment.arms]


# -- sticky keys


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("header:X-User-ID", Sticky(StickyKind.HEADER, "X-User-ID")),
        ("field:customer_id", Sticky(StickyKind.FIELD, "customer_id")),
        (" Header : X-User-ID ", Sticky(StickyKind.HEADER, "X-User-ID")),
    ],
)
def test_parse_sticky(text: str, expected: Sticky) -> None:
    assert parse_sticky(text) == expected
    assert parse_sticky(expected.describe()) == expected


@pytest.mark.parametrize("text", ["", "X-User-ID", "cookie:session", "header:", "header: "])
def test_parse_sticky_refuses_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="header:X-User-ID") as raised:
        parse_sticky(text)
    assert raised.value.to_dict()["field"] == "sticky"


# -- validation


def test_a_new_deployment_has_one_champion_on_everything() -> None:
    deployment = churn()
    assert arms(deployment) == [("champion", 3, 100.0)]
    assert deployment.champion.ref == "churn/3" and deployment.revision == 0
    assert deployment.candidates == () and deployment.shadow_arms == ()


def test_names_and_versions_are_checked() -> None:
    with pytest.raises(InvalidNameError):
        new_deployment("churn api", "churn", 3)
    with pytest.raises(InvalidArgumentError, match="version must be 1 or more"):
        new_deployment("churn", "churn", 0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: replace(d, arms=()), "exactly one champion"),
        (lambda d: replace(d, arms=(d.champion, d.champion)), "exactly one champion"),
        (lambda d: replace(d, arms=(replace(d.champion, weight=90.0),)), "add up to 90"),
        (
            lambda d: replace(
                d,
                arms=(
                    d.champion,
                    Arm("champion", "churn", 4, ArmRole.SHADOW, 0.0, 0.5),
                ),
            ),
            "one name",
        ),
        (
            lambda d: replace(
                d, arms=(d.champion, Arm("shadow", "churn", 4, ArmRole.SHADOW, 0.0, 0.0))
            ),
            "not in",
        ),
        (
            lambda d: replace(
                d, arms=(d.champion, Arm("shadow", "churn", 4, ArmRole.SHADOW, 20.0, 1.0))
            ),
            "weight must be 0",
        ),
        (lambda d: replace(d, arms=(replace(d.champion, weight=float("nan")),)), "weight"),
    ],
)
def test_validate_refuses_unsound_deployments(
    change: Callable[[Deployment], Deployment], message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        validate_deployment(change(churn()))


def test_the_spec_round_trips() -> None:
    deployment = with_shadow(
        with_ab(churn(), [("churn", 3, 30), ("churn", 4, 70)], parse_sticky("field:user")),
        "churn",
        5,
        0.1,
    )
    deployment = replace(deployment, previous_champion=("churn", 2), revision=7)
    again = Deployment.from_spec("churn", deployment.spec_dict(), revision=7)
    assert again == deployment
    assert deployment.to_dict()["revision"] == 7 and deployment.to_dict()["sticky"] == "field:user"


# -- canary and weights


def test_a_canary_takes_its_share_from_the_champion() -> None:
    canary = with_canary(churn(), "churn", 4, 10)
    assert arms(canary) == [("champion", 3, 90.0), ("canary", 4, 10.0)]
    assert canary.candidates == (canary.arm("canary"),)
    replaced = with_canary(canary, "churn", 5, 20)
    assert arms(replaced) == [("champion", 3, 80.0), ("canary", 5, 20.0)]


@pytest.mark.parametrize("weight", [-1, 100.5, float("nan"), True])
def test_a_canary_weight_is_a_percentage(weight: float) -> None:
    with pytest.raises(InvalidArgumentError, match="between 0 and 100"):
        with_canary(churn(), "churn", 4, weight)


def test_the_champion_cannot_be_its_own_canary() -> None:
    with pytest.raises(InvalidArgumentError, match="already the champion"):
        with_canary(churn(), "churn", 3, 10)


def test_setting_a_weight_moves_the_difference_to_the_champion() -> None:
    canary = with_canary(churn(), "churn", 4, 10)
    assert arms(with_weight(canary, "canary", 50)) == [("champion", 3, 50.0), ("canary", 4, 50.0)]
    # The champion's own weight moves the one other arm.
    assert arms(with_weight(canary, "champion", 70)) == [
        ("champion", 3, 70.0),
        ("canary", 4, 30.0),
    ]


def test_weights_that_cannot_add_up_are_refused() -> None:
    split = with_ab(churn(), [("churn", 3, 40), ("churn", 4, 30), ("churn", 5, 30)], None)
    assert arms(split) == [
        ("champion", 3, 40.0),
        ("challenger-4", 4, 30.0),
        ("challenger-5", 5, 30.0),
    ]
    assert arms(with_weight(split, "challenger-4", 50)) == [
        ("champion", 3, 20.0),
        ("challenger-4", 4, 50.0),
        ("challenger-5", 5, 30.0),
    ]
    with pytest.raises(InvalidArgumentError, match="must add up to 100"):
        with_weight(split, "challenger-4", 80)
    with pytest.raises(InvalidArgumentError, match="the champion takes the rest"):
        with_weight(split, "champion", 50)
    with pytest.raises(InvalidArgumentError, match="only live arm"):
        with_weight(churn(), "champion", 50)
    with pytest.raises(InvalidArgumentError, match="has no arm 'canary'"):
        with_weight(split, "canary", 5)


def test_a_shadow_has_no_weight_to_set() -> None:
    with pytest.raises(InvalidArgumentError, match="is a shadow"):
        with_weight(with_shadow(churn(), "churn", 4, 0.5), "shadow", 10)


# -- A/B


def test_ab_keeps_the_champion_and_shadows() -> None:
    shadowed = with_shadow(churn(), "churn", 5, 0.2)
    split = with_ab(shadowed, [("churn", 4, 50), ("churn", 3, 50)], parse_sticky("header:X-U"))
    assert arms(split) == [("challenger", 4, 50.0), ("champion", 3, 50.0), ("shadow", 5, 0.0)]
    assert split.champion.version == 3 and split.sticky == parse_sticky("header:X-U")
    # Without the champion's version, the first arm listed becomes the champion.
    other = with_ab(churn(), [("churn", 4, 60), ("churn", 5, 40)], None)
    assert arms(other) == [("champion", 4, 60.0), ("challenger", 5, 40.0)]


def test_ab_refuses_bad_splits() -> None:
    with pytest.raises(InvalidArgumentError, match="at least two arms"):
        with_ab(churn(), [("churn", 3, 100)], None)
    with pytest.raises(InvalidArgumentError, match="add up to 90"):
        with_ab(churn(), [("churn", 3, 50), ("churn", 4, 40)], None)
    with pytest.raises(InvalidArgumentError, match="churn/4 more than once"):
        with_ab(churn(), [("churn", 3, 50), ("churn", 4, 25), ("churn", 4, 25)], None)


# -- shadow and removal


def test_shadows_are_added_replaced_and_removed() -> None:
    one = with_shadow(churn(), "churn", 4, 0.5)
    assert [(a.name, a.sample, a.weight) for a in one.shadow_arms] == [("shadow", 0.5, 0.0)]
    same = with_shadow(one, "churn", 4, 1.0)
    assert [(a.name, a.sample) for a in same.shadow_arms] == [("shadow", 1.0)]
    two = with_shadow(same, "churn", 5, 0.25)
    assert [a.name for a in two.shadow_arms] == ["shadow-4", "shadow-5"]
    assert [a.name for a in without_arm(two, "shadow-4").shadow_arms] == ["shadow"]
    with pytest.raises(InvalidArgumentError, match="not in"):
        with_shadow(churn(), "churn", 4, 0)


def test_removing_a_candidate_gives_its_weight_back() -> None:
    canary = with_canary(churn(), "churn", 4, 10)
    assert arms(without_arm(canary, "canary")) == [("champion", 3, 100.0)]
    with pytest.raises(InvalidArgumentError, match="cannot be removed"):
        without_arm(canary, "champion")


# -- promote and roll back


def test_promote_makes_the_candidate_champion_and_remembers_the_old_one() -> None:
    canary = with_shadow(with_canary(churn(), "churn", 4, 10), "churn", 4, 0.5)
    done = promoted(canary)
    assert arms(done) == [("champion", 4, 100.0)]  # its own shadow leaves too
    assert done.previous_champion == ("churn", 3)
    back = rolled_back(done)
    assert arms(back) == [("champion", 3, 100.0)] and back.previous_champion is None


def test_promote_needs_a_single_or_named_candidate() -> None:
    with pytest.raises(InvalidArgumentError, match="no candidate"):
        promoted(churn())
    split = with_ab(churn(), [("churn", 3, 40), ("churn", 4, 30), ("churn", 5, 30)], None)
    with pytest.raises(InvalidArgumentError, match="several candidates"):
        promoted(split)
    with pytest.raises(InvalidArgumentError, match="already the champion"):
        promoted(split, "champion")
    done = promoted(split, "challenger-5")
    assert arms(done) == [("champion", 5, 100.0)] and done.sticky is None


def test_rollback_drops_candidates_before_undoing_a_promotion() -> None:
    promoted_once = promoted(with_canary(churn(), "churn", 4, 10))
    trying_again = with_canary(promoted_once, "churn", 5, 5)
    dropped = rolled_back(trying_again)
    assert arms(dropped) == [("champion", 4, 100.0)]
    assert dropped.previous_champion == ("churn", 3)  # still there for the next rollback
    assert arms(rolled_back(dropped)) == [("champion", 3, 100.0)]
    with pytest.raises(InvalidArgumentError, match="nothing to roll back"):
        rolled_back(churn())
