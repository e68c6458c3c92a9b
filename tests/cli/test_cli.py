"""The command line: --version, project, validate, demo; one-line errors with exit code 2."""

import os
import subprocess
import sys

import h5py
import pytest
import yaml
from typer.testing import CliRunner

from relscope import __version__
from relscope.cli.main import app
from relscope.data.project import load_project
from support.projects import make_project_folder

runner = CliRunner()


def run(*args):
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    result.text = " ".join(result.output.split())  # rich wraps lines at the terminal width
    return result


def run_process(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "relscope", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env=os.environ | {"COLUMNS": "250"},  # keep rich's table cells on one line
    )


def test_version_and_help():
    result = run_process("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"relscope {__version__}"
    for command in ("attribute", "analyze", "project", "validate", "run", "demo"):
        help_text = run(command, "--help").output
        assert "Examples" in help_text, command


def project_args(root, out="project.yaml"):
    return [
        "project",
        "--out", root / out,
        "--name", "made by cli",
        "--model", "pkg.mod:factory",
        "--label-map", root / "labels.json",
        "--dataset", root / "dataset.h5",
        "--input-size", 8, 8,
        "-a", root / "attribution-0.h5",
        "-a", root / "attribution-1.h5",
        "--analysis", root / "analysis.h5",
    ]  # fmt: skip


def test_project_writes_a_validated_project(tmp_path):
    make_project_folder(tmp_path)
    result = run(*project_args(tmp_path, "cli.yaml"))
    assert result.exit_code == 0, result.output
    project = load_project(tmp_path / "cli.yaml")
    assert project.name == "made by cli"
    assert project.attributions.attribution_method == "epsilon"  # read from the file
    assert [a.analysis_method for a in project.analyses] == ["spray"]  # read from the file
    document = yaml.safe_load((tmp_path / "cli.yaml").read_text())
    assert document["project"]["attributions"]["sources"] == [
        "attribution-0.h5",
        "attribution-1.h5",
    ]
    validated = run("validate", tmp_path / "cli.yaml")
    assert validated.exit_code == 0, validated.output
    assert "36 rows in 2 file(s)" in validated.text
    assert "3 categories" in validated.text
    assert "valid (0 errors, 0 warnings)" in validated.text


def test_project_refuses_inconsistent_files_and_writes_nothing(tmp_path):
    make_project_folder(tmp_path)
    with h5py.File(tmp_path / "dataset.h5", "a") as handle:
        handle["label"][0] = 2  # now disagrees with the attribution database
    result = run_process(*project_args(tmp_path, "bad.yaml"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "attributions.label: 1 rows disagree with the dataset's labels" in lines[0]
    assert "nothing was written" in lines[0]
    assert not (tmp_path / "bad.yaml").exists()


def test_project_refuses_files_outside_the_folder_and_existing_output(tmp_path):
    make_project_folder(tmp_path / "p")
    args = project_args(tmp_path / "p", "project.yaml")
    result = run_process(*args)
    assert result.returncode == 2
    assert "exists; pass --force" in result.stderr
    (tmp_path / "p" / "sub").mkdir()
    outside = project_args(tmp_path / "p", "sub/elsewhere.yaml")
    result = run_process(*outside)
    assert result.returncode == 2
    assert "outside the project folder" in result.stderr
    assert not (tmp_path / "p" / "sub" / "elsewhere.yaml").exists()
    allowed = [*outside, "--allow-root", tmp_path / "p"]
    assert run_process(*allowed).returncode == 0
    assert load_project(tmp_path / "p" / "sub" / "elsewhere.yaml", allowed_roots=[tmp_path / "p"])
    bad_option = [*project_args(tmp_path / "p", "x.yaml"), "--down-sampling", "squash"]
    result = run_process(*bad_option)
    assert result.returncode == 2
    assert "--down-sampling must be one of none, center_crop, resize" in result.stderr


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (
            lambda root: (
                h5py.File(root / "attribution-1.h5", "a").__enter__()["index"].__setitem__(0, 999)
            ),
            "indices beyond the dataset's 36 samples",
        ),
        (
            lambda root: (root / "labels.json").write_text('[{"index": 0, "name": "cat"}]'),
            "classes [1, 2] are not in the label map",
        ),
        (
            lambda root: (root / "analysis.h5").write_bytes(b"garbage"),
            "without an HDF5 signature",
        ),
    ],
)
def test_validate_reports_problems_with_exit_1(tmp_path, damage, expected):
    project = make_project_folder(tmp_path)
    damage(tmp_path)
    result = run_process("validate", project)
    assert result.returncode == 1, result.stdout + result.stderr
    text = " ".join(result.stdout.split())
    assert expected in text
    assert "invalid" in text


def test_validate_unusable_project_is_one_line_exit_2(tmp_path):
    project = make_project_folder(tmp_path)
    project.write_text("project: &a [*a]\n")
    result = run_process("validate", project)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("relscope: error: ")
    assert "aliases are not allowed" in result.stderr
    missing = run_process("validate", tmp_path / "nope.yaml")
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    usage = run_process("validate")
    assert usage.returncode == 2


def test_validate_reads_virelay_layout_analyses(tmp_path):
    project = make_project_folder(tmp_path, layout="virelay")
    result = run("validate", project)
    assert result.exit_code == 0, result.output
    assert "analysis spray" in result.text
