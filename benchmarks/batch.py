"""Batch scoring benchmark: modelport against the scripts a user would write. One table.

    python benchmarks/batch.py [--rows 1000000] [--quick] [--memory-rows 10000000]
                               [--skip-engines] [--skip-memory]

The model is ``benchmarks/serve.py``'s forest (RandomForestClassifier, 100 trees, 20
float64 features, trained on 5,000 rows), registered in a fresh MODELPORT_HOME (which
converts it to ONNX). The input is a Parquet file of ``--rows`` rows (row groups of
100,000 rows, as Spark or any partitioned writer leaves them) and every case writes the
predictions of every row to Parquet. Each case runs in a process of its own, one after
another (the three main cases ``--repeat`` times in rotating turns, their median shown),
timed from its start to its exit (reading, loading the model, scoring and
writing all count), with the process's peak resident memory (its own ``VmHWM``, read as
it ends: ``wait4``'s ru_maxrss would count the forked copy of this process before
its ``exec``):

* ``pandas + scikit-learn``: ``pd.read_parquet``, ``model.predict``, ``to_parquet``: the
  script most users write.
* ``pandas + onnxruntime``: the same with the package's ONNX graph run by hand in one
  onnxruntime session on the whole matrix (every core): the ceiling for one process.
* ``modelport local``: ``modelport batch predict`` (signature checks, chunks read,
  scored and written in parallel, parts committed). Targets: faster than the first,
  and at least 0.9x the faster of the two.
* ``modelport, N-row file``: the same on ``--memory-rows`` rows: peak memory must stay
  under 1 GB, whatever the file's size (chunks of 100,000 rows).
* ``modelport dask`` with 1 and with 2 local workers, on a LocalCluster started first
  (scaling efficiency: the speed-up of the scoring from 1 to 2 workers over 2, the
  cluster's start left out; goal 0.8), ``--engine ray`` and a Spark job reading the
  Parquet file and writing ``modelport.spark.predict_udf``'s column, when installed. On a
  2-core machine the cluster's own processes share those cores: read engine rows as
  overhead and scaling, not as a cluster's speed.

A case that cannot run (an engine not installed) says why in its row.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ROW_GROUP = 100_000
MEMORY_LIMIT_MB = 1024
Row = dict[str, Any]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the main input")
    parser.add_argument("--memory-rows", type=int, default=10_000_000, help="the big file")
    parser.add_argument("--quick", action="store_true", help="100,000 rows, no big file")
    parser.add_argument("--skip-engines", action="store_true", help="no Dask, Ray, Spark")
    parser.add_argument("--skip-memory", action="store_true", help="no big-file case")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the main cases")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # a child process's one case
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ---- the cases, each run in a child process ------------------------------------------


def case_pandas_sklearn(work: Path, source: str, _: int) -> None:
    import joblib
    import pandas as pd

    model = joblib.load(work / "forest.joblib")
    frame = pd.read_parquet(source)
    pd.DataFrame({"prediction": model.predict(frame)}).to_parquet(work / "out-sklearn.parquet")


def case_pandas_onnxruntime(work: Path, source: str, _: int) -> None:
    import numpy as np
    import onnxruntime as ort
    import pandas as pd

    session = ort.InferenceSession(str(work / "forest.onnx"), providers=["CPUExecutionProvider"])
    frame = pd.read_parquet(source)
    name = session.get_inputs()[0].name
    label = session.run([session.get_outputs()[0].name], {name: frame.to_numpy(np.float64)})
    pd.DataFrame({"prediction": label[0].ravel()}).to_parquet(work / "out-onnx.parquet")


def case_modelport(work: Path, source: str, workers: int, engine: str = "local") -> None:
    import modelport

    output = work / f"out-modelport-{engine}-{workers}-{Path(source).stem}"
    modelport.batch_predict(
        "forest@production", source, str(output), engine=engine,
        workers=workers or None, progress=False, overwrite=True,
    )  # fmt: skip


def case_dask_cluster(work: Path, source: str, workers: int) -> None:
    """``--engine dask`` on a LocalCluster started first, so that the scoring alone is
    timed too (``SCORING_S``): the cluster's start is a fixed cost, not scaling."""
    from distributed import LocalCluster

    import modelport

    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
    ) as cluster:
        started = time.monotonic()
        modelport.batch_predict(
            "forest@production", source, str(work / f"out-dask-{workers}"), engine="dask",
            scheduler=cluster.scheduler_address, progress=False, overwrite=True,
        )  # fmt: skip
        print(f"SCORING_S {time.monotonic() - started:.3f}")


def case_spark(work: Path, source: str, workers: int) -> None:
    from pyspark.sql import SparkSession

    import modelport.spark

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(f"local[{workers or 2}]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "100000")
        .getOrCreate()
    )
    try:
        frame = spark.read.parquet(source)
        udf = modelport.spark.predict_udf(spark, "forest@production")
        scored = frame.select(udf(*frame.columns).alias("prediction"))
        scored.write.mode("overwrite").parquet(str(work / "out-spark"))
    finally:
        spark.stop()


CASES = {
    "sklearn": ("pandas + scikit-learn", case_pandas_sklearn),
    "onnx": ("pandas + onnxruntime (by hand)", case_pandas_onnxruntime),
    "local": ("modelport local", case_modelport),
}


def run_child(args: argparse.Namespace) -> int:
    work = Path(args.workdir)
    os.environ["MODELPORT_HOME"] = str(work / "home")
    if args.case in CASES:
        CASES[args.case][1](work, args.input, args.workers)
    elif args.case == "spark":
        case_spark(work, args.input, args.workers)
    elif args.case == "dask-cluster":
        case_dask_cluster(work, args.input, args.workers)
    else:
        case_modelport(work, args.input, args.workers, engine=args.case)
    status = Path("/proc/self/status").read_text()
    peak_kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
    print(f"PEAK_KB {peak_kb}")
    return 0


def timed(case: str, work: Path, source: Path, workers: int = 0) -> tuple[float, float, str, float]:
    """(seconds, peak MB of the child, error or "", the scoring's own seconds when the
    case reports them, else the seconds) of one case in its own process."""
    command = [sys.executable, __file__, "--case", case, "--workdir", str(work),
               "--input", str(source), "--workers", str(workers)]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return seconds, 0.0, lines[-1] if lines else f"exit code {done.returncode}", seconds
    found = dict(line.split(None, 1) for line in done.stdout.splitlines() if " " in line)
    peak = int(found["PEAK_KB"]) / 1024 if "PEAK_KB" in found else 0.0
    return seconds, peak, "", float(found.get("SCORING_S", seconds))


# ---- set-up ---------------------------------------------------------------------------


def prepare(work: Path, rows: int) -> Path:
    """Train and register the forest, save it for the hand-written scripts, and write
    the input file; the input's path."""
    import joblib
    import serve

    os.environ["MODELPORT_HOME"] = str(work / "home")
    model, x_train, _, accuracy = serve.train_forest()
    serve.register(model, "forest", x_train.head(100), {"accuracy": accuracy})
    joblib.dump(model, work / "forest.joblib")
    import modelport

    with modelport.connect() as registry:
        version = registry.resolve("forest@production")
        package = registry.artifacts.local_path(version.artifact_key)
    (work / "forest.onnx").write_bytes((package / "accelerated" / "model.onnx").read_bytes())
    return write_input(work, rows, x_train.columns.tolist())


def write_input(work: Path, rows: int, columns: list[str]) -> Path:
    """``rows`` rows of normal noise in row groups of ROW_GROUP, written a group at a
    time (the 10M-row file never sits in memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = work / f"input-{rows}.parquet"
    rng = np.random.default_rng(1)
    schema = pa.schema([(name, pa.float64()) for name in columns])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            count = min(ROW_GROUP, rows - start)
            block = rng.normal(size=(count, len(columns)))
            writer.write_table(pa.table(list(block.T), schema=schema))
    return path


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# ---- the table ------------------------------------------------------------------------


def measure(args: argparse.Namespace, work: Path, source: Path, rows: int) -> list[Row]:
    table: list[Row] = []
    results: dict[str, float] = {}
    runs: dict[str, list[tuple[float, float, str]]] = {c: [] for c in ("sklearn", "onnx", "local")}
    cases = list(runs)
    for turn in range(args.repeat):  # in turns, the order rotating: drift hits all alike
        for case in cases[turn % 3 :] + cases[: turn % 3]:
            runs[case].append(timed(case, work, source)[:3])
    for case, outcomes in runs.items():
        errors = [error for _, _, error in outcomes if error]
        seconds = statistics.median(s for s, _, _ in outcomes)
        peak = max(p for _, p, _ in outcomes)
        results[case] = seconds if not errors else float("nan")
        table.append(row(CASES[case][0], rows, seconds, peak, errors[0] if errors else ""))
    best = min(results["sklearn"], results["onnx"])
    local = results["local"]
    table[2]["target"] = "< sklearn; >= 0.9x best"
    table[2]["verdict"] = verdict(local < results["sklearn"] and best / local >= 0.9)
    table[2]["note"] = f"{results['sklearn'] / local:.2f}x sklearn, {best / local:.2f}x best"
    if not args.skip_memory and not args.quick:
        big = write_input(work, args.memory_rows, [f"f{i}" for i in range(20)])
        seconds, peak, error, _ = timed("local", work, big)
        big_row = row(f"modelport, {args.memory_rows:,}-row file", args.memory_rows, seconds,
                      peak, error)  # fmt: skip
        big_row["target"] = f"peak < {MEMORY_LIMIT_MB} MB"
        big_row["verdict"] = verdict(not error and peak < MEMORY_LIMIT_MB)
        table.append(big_row)
        big.unlink()
    if not args.skip_engines:
        table += engines(work, source, rows)
    return table


def engines(work: Path, source: Path, rows: int) -> list[Row]:
    table: list[Row] = []
    if installed("distributed"):
        one = timed("dask-cluster", work, source, 1)
        two = timed("dask-cluster", work, source, 2)
        table.append(row("modelport dask, 1 worker", rows, *one[:3]))
        table.append(row("modelport dask, 2 workers", rows, *two[:3]))
        if not one[2] and not two[2]:
            efficiency = one[3] / two[3] / 2
            table[-2]["note"] = f"scoring {one[3]:.1f} s after the cluster started"
            table[-1].update(target="scaling >= 0.8", verdict=verdict(efficiency >= 0.8),
                             note=f"scoring {two[3]:.1f} s; scaling efficiency "
                                  f"{efficiency:.2f} (1 -> 2 workers, scoring)")  # fmt: skip
    else:
        table.append(row("modelport dask", rows, 0, 0, "dask[distributed] is not installed"))
    if installed("ray"):
        table.append(row("modelport ray, 2 workers", rows, *timed("ray", work, source, 2)[:3]))
    else:
        table.append(row("modelport ray", rows, 0, 0, "ray is not installed"))
    if installed("pyspark"):
        spark = timed("spark", work, source, 2)[:3]
        table.append(row("modelport.spark UDF, local[2]", rows, *spark))
    else:
        table.append(row("modelport.spark UDF", rows, 0, 0, "pyspark is not installed"))
    return table


def row(case: str, rows: int, seconds: float, peak: float, error: str) -> Row:
    if error:
        return {"case": case, "seconds": "-", "rows/s": "-", "peak MB": "-", "target": "",
                "verdict": "ERROR", "note": error[:120]}  # fmt: skip
    return {"case": case, "seconds": f"{seconds:.1f}", "rows/s": f"{rows / seconds:,.0f}",
            "peak MB": f"{peak:,.0f}", "target": "", "verdict": "", "note": ""}  # fmt: skip


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def print_table(table: list[Row]) -> None:
    keys = ["case", "seconds", "rows/s", "peak MB", "target", "verdict", "note"]
    print()
    print("| " + " | ".join(keys) + " |")
    print("|---|---:|---:|---:|---|---|---|")
    for entry in table:
        print("| " + " | ".join(str(entry[k]) for k in keys) + " |")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.case:
        return run_child(args)
    rows = 100_000 if args.quick else args.rows
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelport-batch-bench-") as directory:
        work = Path(directory)
        source = prepare(work, rows)
        table = measure(args, work, source, rows)
    print_table(table)
    load = os.getloadavg()
    print(f"\n{time.monotonic() - started:.0f} s on {os.cpu_count()} CPUs; load average "
          f"{load[0]:.2f}; {json.dumps({'rows': rows})}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
