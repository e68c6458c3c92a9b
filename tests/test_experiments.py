"""experiments/clever_hans_benchmark.py at a tiny size: every output, and its summaries."""

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import clever_hans_benchmark as experiment  # noqa: E402


def test_the_experiment_writes_table_csv_and_plot(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "clever_hans_benchmark.py"), "--seeds", "1",
         "--classes", "3", "--per-class", "60", "--epochs", "1", "--artifacts", "2:1.0",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with (tmp_path / "clever_hans_benchmark.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["class"], r["previous"], r["model"]) for r in rows] == [
        ("3", "2", "clean"), ("3", "2", "poisoned"),
    ]  # fmt: skip
    assert all(0 <= float(r["inverse_test_accuracy"]) <= 1 for r in rows)
    page = (tmp_path / "clever_hans_benchmark.md").read_text()
    assert "| 3 (vs 2) |" in page and "## Against the paper's findings" in page
    assert (tmp_path / "images" / "clever-hans-benchmark.png").read_bytes()[:4] == b"\x89PNG"


def test_summary_counts_and_the_comparison_sentence():
    def row(c, seed, model, accuracy, tau):
        return {"class": c, "seed": seed, "model": model, "inverse_test_accuracy": accuracy,
                "tau": tau}  # fmt: skip

    rows = [
        row(1, 0, "clean", 0.99, 5.0), row(1, 0, "poisoned", 0.80, 50.0),
        row(1, 1, "clean", 0.98, 6.0), row(1, 1, "poisoned", 0.90, 4.0),
        row(2, 0, "clean", 0.97, 7.0), row(2, 0, "poisoned", 0.98, 3.0),
        row(2, 1, "clean", 0.97, 7.0), row(2, 1, "poisoned", 0.99, 2.0),
    ]  # fmt: skip
    table, counts = experiment.summarize(rows)
    assert "| 1 (vs 0) | 0.985 | 0.850 | 5.5 | 27 |" in table
    assert counts == {
        "settings": 2, "accuracy_drop_settings": 1, "mean_accuracy_drop": 0.06,
        "tau_higher_settings": 1,
        "trials": 4, "accuracy_drop_trials": 2, "tau_higher_trials": 1,
    }  # fmt: skip
    sentence = experiment._comparison("box", counts)
    assert "accuracy drops in 1 of 2 settings (fewer than in the paper; by 0.060" in sentence
    assert "tau is higher in 1 of 2 (unlike the paper)" in sentence
