"""The report is data: `robustmia report` rebuilds it from a study folder whose models and
datasets are gone, byte for byte, without importing torch or loading any dataset."""

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import assert_one_line_error
from tests.experiments.test_study import spec_file, study  # noqa: F401  (the module's study fixture)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_report_rebuilds_byte_identical_without_models_or_data(study, tmp_path):  # noqa: F811
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    original = _files(copy / "report")
    removed = [p for p in copy.rglob("*") if p.is_file() and (p.suffix in (".safetensors", ".npz") and "audits" not in p.parts)]
    removed += [p for p in copy.rglob("*") if p.is_file() and p.name in ("config.json", "meta.json", "log.jsonl")]
    assert any(p.suffix == ".safetensors" for p in removed) and any(p.name == "split.npz" for p in removed)
    for p in removed:  # every model, checkpoint, split, cached signal and run config: only the study's results stay
        p.unlink()
    shutil.rmtree(copy / "report")
    probe = ("import sys\nfrom robustmia.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
             "    print(e.code, 'torch' in sys.modules, 'sklearn.datasets' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", probe, "report", str(copy)], capture_output=True, text=True,
                       env={"ROBUSTMIA_DATA_DIR": str(tmp_path / "no-data"), "PATH": "/usr/bin:/bin"})
    assert r.stdout.split()[-3:] == ["0", "False", "False"], (r.stdout, r.stderr)  # no torch, no dataset loader
    rebuilt = _files(copy / "report")
    assert rebuilt.keys() == original.keys()
    assert "report.html" in rebuilt and "tables/table1.md" in rebuilt and "figures/roc_natural.svg" in rebuilt
    differing = [name for name in original if original[name] != rebuilt[name]]
    assert not differing, differing


def test_report_of_a_folder_without_a_study_is_one_line(tmp_path, run_main):
    assert_one_line_error(*run_main("report", str(tmp_path)), "holds no finished study", "robustmia run")
