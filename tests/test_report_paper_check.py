"""The reproduction check (bench/report/paper_check.py, ``bench check-paper``) on hand-made results and
published rows: reproduced, not reproduced, each reason a pair is not comparable, the CLI and its bad
input, the shipped published CSV, and the report's section."""

import math

import pytest

from bench.cli import main
from bench.errors import BenchError
from bench.report import paper_check as P
from report_fakes import fake_registry, make_sweep, results_frame, tiny_scene, write_published

SCENES = ["a", "b"]


@pytest.fixture
def published(tmp_path):
    """The paper's (hand-made) d2rf averages over scenes a and b: PSNR 30.0, SSIM 0.80, LPIPS 0.10."""
    path = write_published(tmp_path / "pub.csv", [
        {"variant": "full", "dataset": "d2rf", "metric": "psnr", "value": 30.0, "scenes": SCENES},
        {"variant": "full", "dataset": "d2rf", "metric": "ssim_gauss", "value": 0.80, "scenes": SCENES},
        {"variant": "full", "dataset": "d2rf", "metric": "lpips_01", "value": 0.10, "scenes": SCENES},
        {"variant": "", "row": "Other method", "dataset": "d2rf", "metric": "psnr", "value": 25.0,
         "scenes": SCENES, "protocol": "", "eval_mode": ""}])
    return P.load_published([path])


def _full(psnr_a=30.1, psnr_b=30.2, ssim=0.81, lpips=0.11):
    return {"full": {"a": {"psnr": psnr_a, "ssim_gauss": ssim, "lpips_01": lpips},
                     "b": {"psnr": psnr_b, "ssim_gauss": ssim, "lpips_01": lpips}}}


def _row(result, scene=P.AVERAGE, metric="psnr", variant="full"):
    hit = result[(result.scene == scene) & (result.metric == metric) & (result.variant == variant)]
    assert len(hit) == 1, result[["variant", "scene", "metric", "verdict", "reason"]]
    return hit.iloc[0]


def test_average_within_tolerance_is_reproduced(published):
    df = results_frame(_full(psnr_a=[30.0, 30.2], psnr_b=[30.1, 30.3]), seeds=(0, 1), eval_mode="best_test")
    result = P.check(df, published)
    psnr = _row(result)
    assert psnr.verdict == P.REPRODUCED and psnr.measured == pytest.approx(30.15)
    assert psnr["difference"] == pytest.approx(0.15) and psnr.tolerance == 0.3
    assert psnr.n_scenes == 2 and psnr.n_seeds == 2
    assert _row(result, metric="ssim_gauss").verdict == P.REPRODUCED
    assert _row(result, metric="lpips_01")["difference"] == pytest.approx(0.01)
    assert psnr.published_row == "Paper (main)"


def test_boundary_is_reproduced_and_past_it_is_not(published):
    exact = P.check(results_frame(_full(psnr_a=30.3, psnr_b=30.3), eval_mode="best_test"), published)
    assert _row(exact).verdict == P.REPRODUCED  # 30.3 - 30.0 is 0.30000000000000071 in floats
    worse = P.check(results_frame(_full(psnr_a=29.4, psnr_b=29.6), eval_mode="best_test"), published)
    row = _row(worse)
    assert row.verdict == P.NOT_REPRODUCED and row["difference"] == pytest.approx(-0.5)
    assert P.verdict_text(row) == "not reproduced (-0.500, tolerance 0.30)"
    loose = P.check(results_frame(_full(psnr_a=29.4, psnr_b=29.6), eval_mode="best_test"), published,
                    P.parse_tolerances(psnr="0.6"))
    assert _row(loose).verdict == P.REPRODUCED and _row(loose).tolerance == 0.6


def test_another_protocol_and_evaluation_mode_are_not_comparable(published):
    result = P.check(results_frame(_full(), protocol="d2rf", eval_mode="last"), published)
    row = _row(result)
    assert row.verdict == P.NOT_COMPARABLE and math.isnan(row["difference"])
    assert row.reason == ("another protocol (measured d2rf, published dydeblur); "
                          "another evaluation mode (measured last, published best_test)")
    assert row.measured == pytest.approx(30.15) and row.published == 30.0  # shown, not judged
    refined = P.check(results_frame(_full(), eval_mode="best_test+refine500"), published)
    assert _row(refined).reason == "another evaluation mode (measured best_test+refine500, published best_test)"


def test_results_without_eval_mode_count_as_last_and_mode_labels_map_to_the_method(published):
    legacy = P.check(results_frame(_full(), eval_mode=None), published)
    assert set(legacy.eval_mode) == {"last"} and _row(legacy).reason.startswith("another evaluation mode")
    # collect labels another mode's rows "full@best_test": still the method full
    labelled = results_frame(_full(), eval_mode="best_test")
    labelled["variant"] = "full@best_test"
    assert _row(P.check(labelled, published)).verdict == P.REPRODUCED
    labelled = labelled.drop(columns=["eval_mode"])  # the label alone says the mode
    assert _row(P.check(labelled, published)).verdict == P.REPRODUCED


def test_missing_metric_scene_and_seed_are_not_comparable(published):
    table = _full(lpips=None)
    result = P.check(results_frame(table, eval_mode="best_test", reasons={"lpips_01": "no LPIPS weights"}),
                     published)
    assert _row(result, metric="lpips_01").reason == ("missing metric lpips_01 in the measured results "
                                                      "(no LPIPS weights)")
    assert _row(result).verdict == P.REPRODUCED  # the other metrics still count
    table = _full()
    table["full"]["a"]["lpips_01"] = None
    result = P.check(results_frame(table, eval_mode="best_test"), published)
    assert _row(result, metric="lpips_01").reason == ("missing metric lpips_01 in the measured results of a "
                                                      "(not computed in this fixture)")

    one_scene = {"full": {"a": _full()["full"]["a"]}}
    row = _row(P.check(results_frame(one_scene, eval_mode="best_test"), published))
    assert row.reason == "missing scenes for the average: b (1 of the 2 published scenes ran)"

    # seed 1 of scene b has no PSNR; a scene's value must hold every seed the sweep planned
    table = _full(psnr_a=[30.1, 30.1], psnr_b=[30.2, None])
    result = P.check(results_frame(table, seeds=(0, 1), eval_mode="best_test"), published)
    assert _row(result).reason == "missing seeds: b seed 1"
    planned = P.check(results_frame(_full(), seeds=(0,), eval_mode="best_test"), published,
                      seeds={("full", "d2rf"): {0, 1, 2}})
    assert _row(planned).reason == "missing seeds: a seed 1, 2; b seed 1, 2"


def test_scenes_have_no_published_value_unless_a_row_names_that_scene(published, tmp_path):
    result = P.check(results_frame(_full(), eval_mode="best_test"), published)
    for scene in SCENES:
        row = _row(result, scene=scene)
        assert row.verdict == P.NOT_COMPARABLE
        assert row.reason == "no published per-scene value (published: the average over 2 scenes)"
    per_scene = P.load_published([write_published(tmp_path / "scene.csv", [
        {"variant": "full", "dataset": "d2rf", "metric": "psnr", "value": 30.0, "scenes": ["a"]}])])
    result = P.check(results_frame(_full(), eval_mode="best_test"), per_scene)
    scene_a = _row(result, scene="a")
    assert scene_a.verdict == P.REPRODUCED and scene_a["difference"] == pytest.approx(0.1)
    assert _row(result).reason == "no published dataset average (published: per scene)"
    assert _row(result, scene="b").reason == "no published per-scene value (published: per-scene values of a)"


def test_no_published_row_for_the_method_dataset_or_metric(published):
    df = results_frame({"no_blur": _full()["full"]}, eval_mode="best_test")
    result = P.check(df, published)
    assert (result.verdict == P.NOT_COMPARABLE).all() and set(result.metric) == {""}
    assert set(result.reason) == {"no published row for method no_blur"}
    assert list(result.scene) == ["a", "b", P.AVERAGE]
    synth = P.check(results_frame(_full(), dataset="synthetic", protocol="synthetic"), published)
    assert set(synth.reason) == {"no published row for dataset synthetic"}
    asked = P.check(results_frame(_full(), eval_mode="best_test"), published, metrics=["ssim"])
    assert _row(asked, metric="ssim").reason == ("no published value of ssim for full on d2rf "
                                                 "(published: psnr, ssim_gauss, lpips_01)")


def test_text_merges_metrics_that_share_a_reason(published):
    result = P.check(results_frame(_full(psnr_a=29.4, psnr_b=29.6), eval_mode="best_test"), published)
    text = P.check_text(result, P.DEFAULT_TOLERANCES, ["pub.csv"])
    lines = text.splitlines()
    assert lines[0] == "reproduction check against pub.csv"
    a_line = next(line for line in lines if line.startswith("full     d2rf     a "))
    assert "psnr, ssim_gauss, lpips_01" in a_line and a_line.endswith(
        "not comparable: no published per-scene value (published: the average over 2 scenes)")
    avg = next(line for line in lines if "average of 2" in line and " psnr " in line)
    assert "29.500" in avg and "30.00" in avg and avg.endswith("not reproduced (-0.500, tolerance 0.30)")
    assert lines[-1] == "2 reproduced, 1 not reproduced, 6 not comparable (scene and dataset rows, per metric)"


def test_shipped_published_rows_name_protocol_mode_and_the_registry_scenes():
    from bench.data.registry import get_dataset

    pub = P.load_published()
    ours = pub[pub.variant != ""]
    assert len(ours) and set(ours.protocol) == {"dydeblur"} and set(ours.eval_mode) == {"best_test"}
    for dataset, scenes in ours.groupby("dataset").scenes:
        assert {frozenset(s) for s in scenes} == {frozenset(s.name for s in get_dataset(dataset).scenes)}, dataset
    assert set(map(len, pub.scenes)) == {6, 8}


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace(",scenes\n", "\n", 1), "missing column(s) scenes"),
    (lambda t: t.replace("best_test", "best", 1), "line 2: eval_mode 'best': expected last or best_test"),
    (lambda t: t.replace("30.0", "thirty", 1), "line 2: value 'thirty': expected a number"),
])
def test_bad_published_csv_is_one_line_naming_file_and_field(tmp_path, edit, message):
    path = write_published(tmp_path / "pub.csv", [
        {"variant": "full", "dataset": "d2rf", "metric": "psnr", "value": 30.0, "scenes": SCENES}])
    path.write_text(edit(path.read_text()))
    with pytest.raises(BenchError) as err:
        P.load_published([path])
    assert str(path) in str(err.value) and message in str(err.value)


# ---------------------------------------------------------------- the command line

@pytest.fixture
def sweep(tmp_path):
    """A hand-made d2rf sweep of full on a and b, 2 seeds (+0.01 dB on seed 1): PSNR mean 30.155."""
    return make_sweep(tmp_path, {"full": {s: {"psnr": p, "ssim_gauss": 0.81} for s, p in (("a", 30.1), ("b", 30.2))}},
                      seeds=(0, 1), dataset="d2rf", protocol="dydeblur")


@pytest.fixture
def last_csv(tmp_path):
    """Published rows measured with the last state (the fixture's runs record no evaluation mode)."""
    return write_published(tmp_path / "published" / "paper.csv", [
        {"variant": "full", "dataset": "d2rf", "metric": m, "value": v, "scenes": SCENES, "eval_mode": "last"}
        for m, v in (("psnr", 30.0), ("ssim_gauss", 0.9))])


def test_cli_prints_verdicts_and_exits_zero_writing_nothing(sweep, last_csv, capsys):
    before = sorted(p.name for p in sweep.iterdir())
    assert main(["check-paper", str(sweep), "--published", str(last_csv)]) == 0
    out = capsys.readouterr().out
    assert "tolerance: PSNR 0.3 dB, SSIM 0.02, LPIPS 0.02" in out
    assert "reproduced (+0.155, tolerance 0.30)" in out
    assert "not reproduced (-0.0900, tolerance 0.020)" in out  # a difference shows one digit more
    assert "1 reproduced, 1 not reproduced, 4 not comparable" in out
    assert sorted(p.name for p in sweep.iterdir()) == before  # no results.parquet: a check computes, never saves
    assert main(["check-paper", str(sweep), "--published", str(last_csv), "--tol-ssim", "0.1",
                 "--metrics", "ssim_gauss"]) == 0
    out = capsys.readouterr().out
    assert "reproduced (-0.0900, tolerance 0.100)" in out and " psnr " not in out


@pytest.mark.parametrize("argv, message", [
    (["--tol-psnr", "-1"], "--tol-psnr -1: expected a finite number >= 0"),
    (["--tol-lpips", "abc"], "--tol-lpips abc: expected a finite number >= 0"),
    (["--tol-ssim", "nan"], "--tol-ssim nan: expected a finite number >= 0"),
    (["--metrics", "psnr,nope"], "--metrics nope: unknown metric"),
    (["--metrics", "false_blur"], "--metrics false_blur: no tolerance for it"),
    (["--published", "no_such.csv"], "--published no_such.csv: no such file"),
])
def test_cli_bad_input_is_one_line_and_exit_2(sweep, argv, message, capsys):
    assert main(["check-paper", str(sweep), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_cli_unknown_sweep_is_exit_2(tmp_path, capsys):
    assert main(["check-paper", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nowhere" in err


def test_synthetic_sweep_is_not_comparable_everywhere(tmp_path, capsys):
    """Against the shipped published rows: no row for the synthetic benchmark, whatever the method."""
    values = {"psnr": 25.0, "ssim": 0.8, "lpips": 0.1}
    sweep = make_sweep(tmp_path, {v: {"motion_0": values, "defocus_0": values} for v in ("full", "no_blur")},
                       dataset="synthetic")
    assert main(["check-paper", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "results/published/dydeblur_neurips2025.csv" in out.splitlines()[0]
    table = [line for line in out.splitlines()[4:] if line.strip()][:-1]  # after the header, before the tally
    assert len(table) == 2 * 3  # 2 variants x (2 scenes + the average)
    assert all(line.endswith("not comparable: no published row for dataset synthetic") for line in table)
    assert out.splitlines()[-1].startswith("0 reproduced, 0 not reproduced, 6 not comparable")


# ---------------------------------------------------------------- the report

def test_report_shows_the_check(sweep, last_csv, tmp_path):
    from bench.report.collect import collect
    from bench.report.html import write_report

    df = collect(sweep)
    result = P.check(df, P.load_published([last_csv]))
    page = write_report(tmp_path / "report.html", sweep, df, [], [], [], paper_check=result).read_text()
    assert '<h2 id="paper-check">Reproduction check</h2>' in page
    assert '<tr class="reproduced"><td>full</td><td>d2rf</td><td>average of 2</td>' in page
    assert 'class="not-reproduced"' in page and "not comparable: no published per-scene value" in page
    plain = write_report(tmp_path / "plain.html", sweep, df, [], [], []).read_text()
    assert "Reproduction check" not in plain


def test_build_all_adds_the_check_unless_reported_rows_are_left_out(tmp_path, monkeypatch):
    from bench.report import build_all

    fake_registry(monkeypatch, {("toy", "a"): tiny_scene("toy", "a")})  # the figures load no real scene
    sweep = make_sweep(tmp_path, {"full": {"a": {"psnr": 25.0, "ssim": 0.8}}})
    build_all(sweep)
    page = (sweep / "report.html").read_text()
    assert "Reproduction check" in page and "no published row for dataset toy" in page
    build_all(sweep, reported=False)
    assert "Reproduction check" not in (sweep / "report.html").read_text()


def test_a_metric_published_as_one_of_several_conventions_is_not_comparable(tmp_path):
    """The paper's SSIM is scikit-image's or 3DGS's, which is not established (ssim|ssim_3dgs): each
    measured convention is shown against it, never judged."""
    path = write_published(tmp_path / "pub.csv", [
        {"variant": "full", "dataset": "d2rf", "metric": "ssim|ssim_3dgs", "value": 0.80, "scenes": SCENES}])
    published = P.load_published([path])
    assert sorted(published.metric) == ["ssim", "ssim_3dgs"] and set(published.alternatives) == {"ssim, ssim_3dgs"}
    df = results_frame({"full": {s: {"ssim": 0.80, "ssim_3dgs": 0.80} for s in SCENES}}, eval_mode="best_test")
    result = P.check(df, published)
    for metric in ("ssim", "ssim_3dgs"):
        row = _row(result, metric=metric)
        assert row.verdict == P.NOT_COMPARABLE and row.measured == pytest.approx(0.80)
        assert "one of ssim, ssim_3dgs; which is not established" in row.reason
