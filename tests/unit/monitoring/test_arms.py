"""Per-arm numbers of a deployment and shadow comparison, read from real log segments."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from arm_logs import T0, write_arm, write_truth
from modelport.domain.deployments import Arm, ArmRole
from modelport.errors import InvalidArgumentError
from modelport.monitoring.arms import arm_stats, compare_shadow

pytestmark = pytest.mark.timeout(60)

CHAMPION = Arm("champion", "churn", 3, ArmRole.CHAMPION, 90.0)
CANARY = Arm("canary", "churn", 4, ArmRole.CANARY, 10.0)
SHADOW = Arm("shadow", "churn", 5, ArmRole.SHADOW, 0.0, 0.5)
SINCE = T0 - timedelta(hours=1)


def test_each_arm_counts_its_requests_errors_latency_and_accuracy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    lat3 = rng.uniform(0.001, 0.010, 200)
    lat4 = rng.uniform(0.002, 0.020, 50)
    pred3 = rng.integers(0, 2, 200)
    pred4 = rng.integers(0, 2, 50)
    status4 = [500 if i < 3 else 200 for i in range(50)]
    ids3 = write_arm(tmp_path, model="churn", version=3, predictions=pred3, latencies_s=lat3)
    ids4 = write_arm(
        tmp_path, model="churn", version=4, arm="canary", predictions=pred4,
        latencies_s=lat4, statuses=status4,
    )  # fmt: skip
    # Not the deployment's: another deployment, a segment from before deployments.
    write_arm(tmp_path, model="churn", version=3, predictions=[1] * 30, deployment="other")
    write_arm(tmp_path, model="churn", version=3, predictions=[1] * 30, with_arm_columns=False)
    truth3 = dict(zip(ids3[:100], pred3[:80].tolist() + (1 - pred3[80:100]).tolist(), strict=True))
    truth4 = dict(zip(ids4[3:43], pred4[3:43].tolist(), strict=True))
    write_truth(tmp_path, "churn", {**truth3, **truth4})

    stats = arm_stats(str(tmp_path), "churn", [CHAMPION, CANARY], since=SINCE)

    three, four = stats["champion"], stats["canary"]
    assert (three.requests, three.errors, four.requests, four.errors) == (200, 0, 50, 3)
    assert three.latency_p50_ms == pytest.approx(np.percentile(lat3 * 1000, 50))
    assert three.latency_p99_ms == pytest.approx(np.percentile(lat3 * 1000, 99))
    assert four.latency_p99_ms == pytest.approx(np.percentile(lat4[3:] * 1000, 99))
    assert sorted(three.latencies_ms) == pytest.approx(sorted(lat3 * 1000))
    assert (three.labelled, three.correct, three.accuracy) == (100, 80, 0.8)
    assert (four.labelled, four.correct, four.accuracy) == (40, 40, 1.0)
    assert three.mean_score == pytest.approx(pred3.mean())
    assert three.score_std == pytest.approx(pred3.std(ddof=1))
    assert four.error_rate == pytest.approx(3 / 50)
    assert three.to_dict()["version"] == 3


def test_a_live_arm_leaves_out_the_rows_a_shadow_of_its_version_logged(tmp_path: Path) -> None:
    ids = write_arm(tmp_path, model="churn", version=4, arm="canary", predictions=[1] * 10)
    write_arm(tmp_path, model="churn", version=4, arm="shadow", predictions=[0] * 7)
    shadow4 = Arm("shadow", "churn", 4, ArmRole.SHADOW, 0.0, 1.0)
    stats = arm_stats(str(tmp_path), "churn", [CANARY, shadow4], since=SINCE)
    assert (stats["canary"].requests, stats["shadow"].requests) == (10, 7)
    assert len(ids) == 10


def test_the_window_and_missing_logs(tmp_path: Path) -> None:
    write_arm(tmp_path, model="churn", version=3, predictions=[1] * 5)
    later = arm_stats(str(tmp_path), "churn", [CHAMPION, CANARY], since=T0 + timedelta(seconds=1))
    assert later["champion"].requests == 0
    assert later["canary"].requests == 0
    assert later["canary"].latency_p50_ms is None
    assert later["canary"].accuracy is None
    old = tmp_path / "old"
    write_arm(old, model="churn", version=3, predictions=[1] * 5, with_arm_columns=False)
    assert arm_stats(str(old), "churn", [CHAMPION], since=SINCE)["champion"].requests == 0
    with pytest.raises(InvalidArgumentError, match="naive"):
        arm_stats(str(tmp_path), "churn", [CHAMPION], since=SINCE.replace(tzinfo=None))


def test_a_named_score_column_is_averaged(tmp_path: Path) -> None:
    write_arm(
        tmp_path, model="churn", version=3, predictions=["a", "b", "a"],
        inputs={"amount": [10.0, 20.0, 60.0]},
    )  # fmt: skip
    plain = arm_stats(str(tmp_path), "churn", [CHAMPION], since=SINCE)["champion"]
    assert plain.mean_score is None  # class names: nothing to average
    stats = arm_stats(str(tmp_path), "churn", [CHAMPION], since=SINCE, score="in_amount")
    assert (stats["champion"].mean_score, stats["champion"].scored) == (30.0, 3)
    assert stats["champion"].score_column == "in_amount"


def test_a_shadow_is_compared_with_the_champion_on_the_same_requests(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    requests = [f"r{i}" for i in range(100)]
    p_champion = rng.uniform(0, 1, 100)
    p_shadow = np.clip(p_champion + rng.normal(0, 0.1, 100), 0, 1)
    write_arm(
        tmp_path, model="churn", version=3, request_ids=requests,
        predictions=(p_champion > 0.5).astype(int),
        probabilities=np.column_stack([1 - p_champion, p_champion]),
        inputs={"x": list(range(100))}, latencies_s=[0.002] * 100,
    )  # fmt: skip
    # The shadow saw 80 of the 100 requests and failed on one of them.
    write_arm(
        tmp_path, model="churn", version=5, arm="shadow", request_ids=requests[:80],
        predictions=(p_shadow[:80] > 0.5).astype(int),
        probabilities=np.column_stack([1 - p_shadow[:80], p_shadow[:80]]),
        statuses=[500] + [200] * 79, latencies_s=[0.004] * 80,
    )  # fmt: skip

    result = compare_shadow(str(tmp_path), "churn", CHAMPION, SHADOW, since=SINCE, top=3)

    agree = ((p_champion[1:80] > 0.5) == (p_shadow[1:80] > 0.5)).sum()
    diffs = np.abs(p_champion[1:80] - p_shadow[1:80])
    assert (result.rows, result.shadow_rows, result.shadow_errors) == (79, 80, 1)
    assert result.agreement_rate == pytest.approx(agree / 79)
    assert result.mean_abs_diff == pytest.approx(diffs.mean())
    assert result.max_abs_diff == pytest.approx(diffs.max())
    assert (result.champion_latency_p50_ms, result.shadow_latency_p50_ms) == pytest.approx(
        (2.0, 4.0)
    )
    worst = result.worst
    assert len(worst) == 3
    disagreeing = [i for i in range(1, 80) if (p_champion[i] > 0.5) != (p_shadow[i] > 0.5)]
    if disagreeing:
        first = max(disagreeing, key=lambda i: diffs[i - 1])
        assert worst[0]["prediction_id"] == f"r{first}-0"
        assert worst[0]["inputs"] == {"x": first}
        assert worst[0]["champion"] != worst[0]["shadow"]
    assert result.to_dict()["shadow"] == "churn/5"


def test_no_shadow_rows_means_nothing_to_compare(tmp_path: Path) -> None:
    write_arm(tmp_path, model="churn", version=3, predictions=[1, 0])
    result = compare_shadow(str(tmp_path), "churn", CHAMPION, SHADOW, since=SINCE)
    assert (result.rows, result.agreement_rate, result.worst) == (0, None, [])


def test_any_fsspec_uri_holds_the_arms_logs() -> None:
    uri = f"memory://arms-{uuid.uuid4().hex}"
    ids = write_arm(uri, model="churn", version=3, request_ids=["a", "b"], predictions=[1, 0])
    write_arm(uri, model="churn", version=5, arm="shadow", request_ids=["a", "b"],
              predictions=[1, 1])  # fmt: skip
    write_truth(uri, "churn", dict.fromkeys(ids, 1))
    stats = arm_stats(uri, "churn", [CHAMPION, SHADOW], since=SINCE)
    assert (stats["champion"].requests, stats["champion"].accuracy) == (2, 0.5)
    assert (stats["shadow"].requests, stats["shadow"].accuracy) == (2, 1.0)
    result = compare_shadow(uri, "churn", CHAMPION, SHADOW, since=SINCE)
    assert (result.rows, result.agreement_rate, result.max_abs_diff) == (2, 0.5, 1.0)
