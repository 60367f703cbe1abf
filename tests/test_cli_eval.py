"""``bench eval SWEEP``: every finished run of a sweep re-scored from its saved renders, unfinished
runs skipped and counted, a failing run named while the others go on, ``--only`` selecting runs."""

import json

import pytest

from bench import rundir
from bench.cli import main
from bench.sweepdir import not_a_sweep
from report_fakes import fake_registry, tiny_scene, write_png, write_run

FINISHED = ("full-toy-a-s0", "no_blur-toy-b-s0")
UNFINISHED = "full-toy-b-s0"


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    """tmp_path/out/demo: two finished runs with test renders (results.json from report_fakes, its
    LPIPS "not computed") and one unfinished run (config only), all three in the manifest; no LPIPS
    backbone weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_weights"))
    scenes = {("toy", s): tiny_scene("toy", s) for s in ("a", "b")}
    fake_registry(monkeypatch, scenes)
    sweep = tmp_path / "out" / "demo"
    runs = {}
    for run_id in (*FINISHED, UNFINISHED):
        variant, dataset, scene, seed = run_id.split("-")
        runs[run_id] = {"variant": variant, "dataset": dataset, "scene": scene, "seed": int(seed[1:])}
        run = sweep / "runs" / run_id
        if run_id in FINISHED:
            write_run(sweep, variant, dataset, scene, 0, {"psnr": 1.0})
            sc = scenes[(dataset, scene)]
            for i, name in enumerate(sc.test.names):
                write_png(run / rundir.TEST_RENDERS / f"{name}.png", sc.test.images[i].numpy() * 0.9)
        run.mkdir(parents=True, exist_ok=True)
        (run / rundir.CONFIG).write_text(f"method: {variant}\ndataset: {dataset}\nscene: {scene}\nseed: 0\n")
    (sweep / "manifest.json").write_text(json.dumps({"schema": 1, "sweep": "demo", "runs": runs}))
    return sweep


def _doc(sweep, run_id):
    return json.loads((sweep / "runs" / run_id / rundir.RESULTS).read_text())


def test_a_folder_of_runs_without_manifest_is_no_sweep(sweep, capsys):
    (sweep / "manifest.json").unlink()
    before = _doc(sweep, FINISHED[0])
    assert main(["eval", str(sweep)]) == 2
    assert capsys.readouterr().err.strip() == f"bench eval: error: {not_a_sweep(sweep)}"
    assert _doc(sweep, FINISHED[0]) == before


def test_sweep_rescored_identity_and_provenance_kept_unfinished_skipped(sweep, capsys):
    assert main(["eval", str(sweep)]) == 0
    out, err = capsys.readouterr()
    for run_id in FINISHED:
        doc = _doc(sweep, run_id)
        assert tuple(doc)[:len(rundir.IDENTITY_KEYS)] == rundir.IDENTITY_KEYS and doc["run_id"] == run_id
        assert doc["evaluated"]["by"] == "bench eval" and doc["provenance"]["git_commit"] == "deadbeef"
        assert doc["metrics"]["aggregate"]["psnr"] != 1.0  # scored from the renders, not the fixture's value
        lpips_reason = doc["metrics"]["missing"]["lpips"]
        assert "bench weights fetch" in lpips_reason and "bench eval SWEEP" in lpips_reason
    assert not (sweep / "runs" / UNFINISHED / rundir.RESULTS).exists()
    assert "re-scored 2 of 3 runs; 1 unfinished skipped; 0 failed" in out
    assert f"rebuild the report: bench report {sweep}" in out
    assert err.count("LPIPS not computed") == 1 and "LPIPS not computed in 2 of 2 runs re-scored" in err


def test_sweep_file_resolves_to_its_output_directory(sweep, write_sweep, capsys):
    assert main(["eval", str(write_sweep(name="demo")), "--only", "scene=a"]) == 0
    assert "re-scored 1 of 1 runs; 0 unfinished skipped; 0 failed" in capsys.readouterr().out
    assert "evaluated" in _doc(sweep, "full-toy-a-s0") and "evaluated" not in _doc(sweep, "no_blur-toy-b-s0")


def test_a_failing_run_is_named_the_others_rescored_exit_nonzero(sweep, capsys):
    bad, good = FINISHED
    (sweep / "runs" / bad / rundir.TEST_RENDERS / "00001.png").unlink()
    before = (sweep / "runs" / bad / rundir.RESULTS).read_bytes()
    assert main(["eval", str(sweep)]) == 1
    out, err = capsys.readouterr()
    failures = [line for line in err.splitlines() if "not re-scored" in line]
    assert len(failures) == 1 and bad in failures[0] and "00001.png: missing render" in failures[0]
    assert (sweep / "runs" / bad / rundir.RESULTS).read_bytes() == before  # nothing overwritten
    assert "evaluated" in _doc(sweep, good)
    assert "re-scored 1 of 3 runs; 1 unfinished skipped; 1 failed" in out


def test_only_selects_runs_and_bad_filters_are_one_line_errors(sweep, capsys):
    assert main(["eval", str(sweep), "--only", "variant=no_blur"]) == 0
    assert "evaluated" in _doc(sweep, "no_blur-toy-b-s0") and "evaluated" not in _doc(sweep, "full-toy-a-s0")
    assert "re-scored 1 of 1 runs; 0 unfinished skipped" in capsys.readouterr().out

    assert main(["eval", str(sweep), "--only", "variant=nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "variant=nope: not in this sweep" in err
    run = sweep / "runs" / "full-toy-a-s0"
    assert main(["eval", str(run), "--only", "variant=full"]) == 2
    assert "not a sweep" in capsys.readouterr().err
    assert main(["eval", str(sweep), "--refine-test-poses", "5"]) == 2
    assert "one RUN_DIR, not a sweep" in capsys.readouterr().err
    assert "evaluated" not in _doc(sweep, "full-toy-a-s0")
