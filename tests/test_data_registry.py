"""Dataset registry, data roots, validation of malformed scenes, and the `bench data` verbs."""

import shutil

import cv2
import numpy as np
import pytest

from bench.cli import main
from bench.data import registry
from bench.data.registry import check_scene, data_root, get_dataset, list_datasets, load_scene
from bench.errors import BenchError
from data_layouts import write_d4dgs
from data_synth_cache import synthetic_root


def test_registry_lists_the_datasets():
    specs = {s.name: s for s in list_datasets()}
    assert set(specs) == {"stereo_blur", "stereo_blur_d4dgs", "d2rf", "synthetic", "diagnostic"}
    assert specs["stereo_blur"].scene_names == ["basketball", "children", "sailor", "seesaw", "skating", "street"]
    assert len(specs["stereo_blur_d4dgs"].scenes) == 6 and len(specs["d2rf"].scenes) == 8
    assert {s.protocol for s in specs.values()} == {"dyblurf", "deblur4dgs", "d2rf", "synthetic"}
    syn = specs["synthetic"]
    assert {"motion_0", "motion_1", "defocus_0", "defocus_1"} <= set(syn.scene_names)
    assert syn.scene("motion_0").layout == "dyblurf" and syn.scene("defocus_1").layout == "d2rf"
    assert syn.scene("defocus_0").blur_type == "defocus" and specs["d2rf"].scene("Car").blur_type == "defocus"
    assert all(s.citation for s in specs.values())


def test_unknown_names_list_the_known_ones():
    with pytest.raises(BenchError, match="unknown.*stereo_blur"):
        get_dataset("stereo")
    with pytest.raises(BenchError, match="motion_7.*known: motion_0"):
        load_scene("synthetic", "motion_7")


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_DATA", raising=False)
    assert data_root("d2rf") == registry.repo_root() / "datasets" / "data" / "d2rf"
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    assert data_root("d2rf") == tmp_path / "d2rf"
    assert data_root("d2rf", tmp_path / "mine") == tmp_path / "mine"


def test_malformed_yaml_names_file_and_key(tmp_path, monkeypatch):
    (tmp_path / "bad.yaml").write_text("name: bad\nlayout: dyblurf\nblur_type: wobble\nprotocol: x\nscenes: [a]\n")
    monkeypatch.setattr(registry, "datasets_dir", lambda: tmp_path)
    with pytest.raises(BenchError, match=r"bad.yaml: key blur_type"):
        get_dataset("bad")


def test_missing_scene_is_one_clear_line(tmp_path):
    problems = check_scene("stereo_blur", "seesaw", tmp_path)
    assert len(problems) == 1 and str(tmp_path / "seesaw") in problems[0] and "--data-root" in problems[0]
    with pytest.raises(BenchError, match="scene folder not found"):
        load_scene("stereo_blur", "seesaw", tmp_path)


def _copy(name, tmp_path):
    root = synthetic_root(name)
    shutil.copytree(root / name, tmp_path / name)
    return tmp_path


def test_malformed_dyblurf_scene_reports_each_problem(tmp_path):
    root = _copy("motion_0", tmp_path)
    dense = root / "motion_0" / "dense"
    pb = np.load(dense / "poses_bounds.npy")
    np.save(dense / "poses_bounds.npy", pb[:-2])  # wrong row count
    (dense / "images_128x72" / "00003.png").write_bytes(b"not a png")  # unreadable
    cv2.imwrite(str(dense / "images_128x72" / "00004.png"), np.zeros((32, 64, 3), np.uint8))  # wrong size
    d = np.load(dense / "disp" / "00002.npy")
    d[5, 5] = np.nan
    np.save(dense / "disp" / "00002.npy", d)  # NaN in depth
    shutil.rmtree(dense / "inference_images")  # missing folder
    (dense / "motion_masks" / "00001.png").unlink()  # wrong count
    np.save(dense / "disp" / "00006.npy", np.ones((128, 72), np.float32))  # transposed: shape mismatch
    problems = check_scene("synthetic", "motion_0", root)
    expect = [("images_128x72", "expected 15 training images (30 rows"), ("00003.png", "readable image"),
              ("00004.png", "expected a 128x72 image, got 64x32"), ("disp/00002.npy", "finite disparity"),
              ("inference_images", "sharp right (test) images"), ("motion_masks", "expected 16 motion masks"),
              ("disp/00006.npy", "aspect ratio (128x72), got 72x128")]
    for path_part, text in expect:
        assert any(path_part in p and text in p for p in problems), (path_part, text, problems)
    assert all("\n" not in p for p in problems)
    with pytest.raises(BenchError) as err:
        load_scene("synthetic", "motion_0", root)
    assert str(err.value).splitlines() == problems


def test_malformed_d2rf_scene_reports_each_problem(tmp_path):
    root = _copy("defocus_0", tmp_path)
    base = root / "defocus_0"
    (base / "dpt" / "000002_left.npy").unlink()
    (base / "images" / "000003_right.png").unlink()
    np.save(base / "poses_bounds.npy", np.load(base / "poses_bounds.npy")[:-1])
    (base / "synthetic_gt" / "gt.npz").write_bytes(b"broken")
    problems = check_scene("synthetic", "defocus_0", root)
    expect = [("images_2", "expected 31 images (31 rows"), ("dpt", "missing 000002_left.npy"),
              ("images", "sharp test image 000003_right"), ("gt.npz", "readable .npz")]
    for path_part, text in expect:
        assert any(path_part in p and text in p for p in problems), (path_part, text, problems)


def test_malformed_d4dgs_scene_reports_each_problem(tmp_path):
    w2cs = [np.eye(4)] * 4
    K = np.array([[20.0, 0, 10], [0, 20.0, 5], [0, 0, 1]])
    write_d4dgs(tmp_path, "seesaw", w2cs, colmap_wh=(20, 10), K_full=K, img_wh=(8, 4), tracks=False)
    assert check_scene("stereo_blur_d4dgs", "seesaw", tmp_path) == []
    base = tmp_path / "seesaw" / "x1"
    sparse = base / "flow3d_preprocessed" / "colmap" / "sparse"
    (sparse / "images.bin").write_bytes((sparse / "images.bin").read_bytes()[:-10])  # truncated
    bad = np.full((4, 8), np.nan, np.float32)
    np.save(base / "flow3d_preprocessed" / "aligned_depth_anything_colmap" / "00002.npy", bad)
    (base / "images_test" / "00001.png").unlink()
    problems = check_scene("stereo_blur_d4dgs", "seesaw", tmp_path)
    expect = [("images.bin", "truncated COLMAP binary"), ("00002.npy", "finite disparity"),
              ("images_test", "expected 4 sharp interleaved images")]
    for path_part, text in expect:
        assert any(path_part in p and text in p for p in problems), (path_part, text, problems)


def test_cli_check_and_list(tmp_path, capsys):
    root = _copy("motion_0", tmp_path)
    assert main(["data", "check", "synthetic", "motion_0", "--data-root", str(root)]) == 0
    assert "synthetic/motion_0: ok" in capsys.readouterr().out
    (root / "motion_0" / "dense" / "disp" / "00000.npy").unlink()
    assert main(["data", "check", "synthetic", "motion_0", "--data-root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "disp: expected 16 disparity .npy files" in out and "Traceback" not in out
    assert main(["data", "check", "no_such_dataset"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no_such_dataset" in err
    assert main(["data", "list", "--data-root", str(tmp_path.parent)]) == 0
    out = capsys.readouterr().out
    assert "stereo_blur_d4dgs" in out and "motion_0" in out


def test_data_root_means_the_dataset_folder_and_a_parent_is_taken_with_a_note(tmp_path, capsys):
    """--data-root is a dataset's own folder in every verb; given the parent of dataset folders
    instead, the dataset's folder inside it is used and a note says so."""
    root = _copy("motion_0", tmp_path / "data" / "synthetic")
    assert main(["data", "check", "synthetic", "motion_0", "--data-root", str(root)]) == 0
    assert "note:" not in capsys.readouterr().err
    assert main(["data", "check", "synthetic", "motion_0", "--data-root", str(tmp_path / "data")]) == 0
    captured = capsys.readouterr()
    assert "synthetic/motion_0: ok" in captured.out
    assert f"--data-root {tmp_path / 'data'}: a parent of dataset folders; using {root}" in captured.err
    # list and doctor look at every dataset: they take the parent as --data-parent, --data-root with a note
    assert main(["data", "list", "--data-parent", str(tmp_path / "data")]) == 0
    captured = capsys.readouterr()
    assert f"data root {root}" in captured.out and "note:" not in captured.err
    assert main(["data", "list", "--data-root", str(tmp_path / "data")]) == 0
    captured = capsys.readouterr()
    assert f"data root {root}" in captured.out and "taken as the parent of every dataset's folder" in captured.err


def test_check_of_a_synthetic_dataset_not_generated_yet_is_ok(tmp_path, capsys):
    assert main(["data", "check", "synthetic", "--data-root", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert out.count("ok (not generated yet") == 5 and not (tmp_path / "none").exists()


def test_data_list_points_at_each_real_release(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for repo in ("huiqiang-sun/DyBluRF", "ZcsrenlongZ/Deblur4DGS", "xianrui-luo/D2RF"):
        assert "download: the" in out and f"https://github.com/{repo}" in out
