"""``bench doctor``, gsplat's CUDA extension preflight, and building it once for a SLURM sweep (no GPU needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.errors import BenchError
from bench.harness.executors import slurm as X
from bench.harness import gsplat_build as G
from bench.harness.runs import expand
from bench.harness.spec import load_sweep
from bench.render import gsplat_ext as E

LINE = re.compile(r"^(ok|warn|FAIL|skip)\s+(\w+)\s+\S")
ENSURE = E.ensure_extension  # the cached function (tests replace the module attribute)


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    """No cached extension status between tests; no build environment leaking in."""
    ENSURE.cache_clear()
    for var in ("TORCH_CUDA_ARCH_LIST", "TORCH_EXTENSIONS_DIR", "CUDA_INC_PATH", "CPATH", "CPLUS_INCLUDE_PATH"):
        monkeypatch.delenv(var, raising=False)
    yield
    ENSURE.cache_clear()


@pytest.fixture
def cpu_only(monkeypatch):
    """This machine as a CPU-only one, whatever it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def gpu_machine(monkeypatch):
    """A CUDA build of torch that sees a GPU, with gsplat not precompiled (so it JIT-builds)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(E, "precompiled", lambda: False)


# ---------------------------------------------------------------- bench doctor


def test_doctor_on_a_cpu_machine_prints_each_line_and_exits_0(cpu_only, capsys):
    assert main(["doctor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(LINE.match(line) for line in lines), lines
    names = [LINE.match(line).group(2) for line in lines]
    assert names[:7] == ["python", "torch", "cuda", "gpus", "gsplat", "lpips", "slurm"]
    assert "data" in names
    gsplat = next(line for line in lines if " gsplat " in line)
    assert gsplat.startswith("skip") and "no CUDA device, torch backend will be used" in gsplat
    assert any(line.startswith("skip  gpus") for line in lines)
    assert not any(line.startswith("FAIL") for line in lines)


def test_doctor_json(cpu_only, capsys):
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert {c["name"] for c in report["checks"]} >= {"python", "torch", "gsplat", "lpips", "slurm", "data"}
    assert all(c["status"] in ("ok", "warn", "FAIL", "skip") for c in report["checks"])


def test_build_gsplat_without_cuda_is_one_fail_line_and_exit_1(cpu_only, capsys):
    assert main(["doctor", "--build-gsplat"]) == 1
    fails = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 1 and " gsplat " in fails[0]
    assert "no CUDA device to build for: set TORCH_CUDA_ARCH_LIST" in fails[0]


def test_doctor_reports_a_build_with_its_time(gpu_machine, monkeypatch, capsys):
    status = E.ExtensionStatus(True, "", 183.4, "/shared/ext/gsplat_cuda", compiled=True)
    monkeypatch.setattr(E, "ensure_extension", lambda **kw: status)
    assert main(["doctor", "--build-gsplat"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if " gsplat " in ln)
    assert line.startswith("ok") and "built in 183.4 s from /shared/ext/gsplat_cuda" in line


def test_doctor_warns_when_not_built_and_not_asked_to_build(gpu_machine, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(E, "toolchain_problem", lambda: None)
    monkeypatch.setattr(E, "build_dir", lambda: tmp_path)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert main(["doctor"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if " gsplat " in ln)
    assert line.startswith("warn") and "not built yet" in line and "bench doctor --build-gsplat" in line


# ---------------------------------------------------------------- the preflight


@pytest.mark.parametrize("setup, expected", [
    (lambda mp: mp.setattr(E, "find_nvcc", lambda: (None, None)), "CUDA toolkit not found"),
    (lambda mp: mp.setattr(E, "find_nvcc", lambda: ("/opt/cuda", None)), "nvcc not found: /opt/cuda/bin/nvcc"),
    (lambda mp: (mp.setattr(E, "find_nvcc", lambda: ("/opt/cuda", "/opt/cuda/bin/nvcc")),
                 mp.setattr(E, "nvcc_version", lambda nvcc: "12.4")),
     "nvcc 12.4 (/opt/cuda/bin/nvcc) does not match torch's CUDA 13.0"),
    (lambda mp: (mp.setattr(E, "find_nvcc", lambda: ("/opt/cuda", "/opt/cuda/bin/nvcc")),
                 mp.setattr(E, "nvcc_version", lambda nvcc: "13.0"),
                 mp.setenv("CXX", "no-such-c++")),
     "no C++ compiler: no-such-c++ not on PATH"),
    (lambda mp: (mp.setattr(E, "find_nvcc", lambda: ("/opt/cuda", "/opt/cuda/bin/nvcc")),
                 mp.setattr(E, "nvcc_version", lambda nvcc: "13.0"),
                 mp.setattr(E.shutil, "which", lambda name: None if name == "ninja" else f"/usr/bin/{name}")),
     "ninja not found on PATH"),
])
def test_a_missing_tool_is_one_line_naming_it(gpu_machine, monkeypatch, setup, expected):
    monkeypatch.setattr(E, "toolkit_files_problem", lambda home: None)
    setup(monkeypatch)
    status = E.ensure_extension()
    assert not status.ok and expected in status.reason
    with pytest.raises(BenchError) as err:
        E.require_extension()
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_a_cuda_home_without_headers_or_runtime_is_named(tmp_path):
    home = str(tmp_path)  # e.g. /usr/local when nvcc on PATH is a wrapper in /usr/local/bin
    assert f"CUDA headers not found: no {home}/include/cuda_runtime.h" in E.toolkit_files_problem(home)
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "cuda_runtime.h").write_text("")
    assert f"no {home}/lib/libcudart.so" in E.toolkit_files_problem(home)
    (tmp_path / "lib64").mkdir()
    (tmp_path / "lib64" / "libcudart.so.13").write_text("")
    assert E.toolkit_files_problem(home) is None


def test_no_cuda_device_when_a_run_needs_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    with pytest.raises(BenchError, match="no CUDA device visible"):
        E.require_extension()
    monkeypatch.setattr(torch.version, "cuda", None)
    E.ensure_extension.cache_clear()
    assert "CPU-only build" in E.ensure_extension().reason


def test_build_error_line_names_the_compiler_error():
    out = ("Error building extension 'gsplat_cuda': [1/3] /usr/local/cuda/bin/nvcc -Werror -c a.cu\n"
           "FAILED: a.cuda.o\n/usr/local/cuda/bin/nvcc --generate-dependencies-with-compile -c a.cu\n"
           "/x/csrc/a.cu(12): warning #20012-D: __host__ annotation is ignored\n"
           "/x/csrc/a.cu(40): error: identifier \"foo\" is undefined\n"
           "/x/csrc/a.cu(41): error: expected a \";\"\n2 errors detected in the compilation of \"a.cu\".\n"
           "ninja: build stopped: subcommand failed.\n")
    assert E.build_error_line(out) == '/x/csrc/a.cu(40): error: identifier "foo" is undefined'
    link = "[29/29] c++ a.o -o gsplat_cuda.so\nFAILED: gsplat_cuda.so\n/usr/bin/ld: cannot find -lcudart\n" \
           "collect2: error: ld returned 1 exit status\nninja: build stopped: subcommand failed."
    assert E.build_error_line(link) == "/usr/bin/ld: cannot find -lcudart"
    assert E.build_error_line("Error building extension 'gsplat_cuda': [1/2] nvcc x\nKilled\n") == "Killed"


def test_training_on_gsplat_stops_at_the_preflight(monkeypatch, tmp_path):
    from bench.method import train as T
    from bench.method.device import DeviceChoice

    monkeypatch.setattr(T, "pick_device", lambda *a: DeviceChoice(torch.device("cpu"), "gsplat", "test"))

    def missing():
        raise BenchError("gsplat backend: gsplat's CUDA extension: ninja not found on PATH (pip install ninja)")

    monkeypatch.setattr(T, "require_extension", missing)
    with pytest.raises(BenchError, match="ninja not found"):
        T.train(tmp_path / "run", method="full", dataset="synthetic", scene="motion_0", profile="cpu")
    assert not (tmp_path / "run").exists()  # checked before anything is written


# ---------------------------------------------------------------- SLURM: build once before the arrays


def _gsplat_runs(write_sweep, **resources):
    """Runs of a 2-run SLURM sweep on the gsplat backend (device auto, one GPU each)."""
    spec = load_sweep(write_sweep(
        datasets=[{"name": "synthetic", "scenes": ["motion_0"]}],
        overrides={"train.steps": 20, "train.backend": "auto"},
        executor={"kind": "slurm", "device": "auto",
                  "resources": {"gpus_per_node": 1, "time_min": 600, "partition": "gpu", **resources}}))
    return spec, expand(spec)


def _submit(spec, runs, built: list, arrays: list) -> None:
    def fake_build(folder, params):
        built.append(params)
        return "900", f"{folder}/900_0_log.out"

    def fake_array(folder, params, dirs):
        arrays.append(params)
        return [f"901_{i}" for i in range(len(dirs))]

    X.submit_slurm(spec.output_dir(), spec.name, runs, array_limit=1, submit_array=fake_array,
                   submit_build=fake_build)


def _sbatch(params: dict, tmp_path: Path, monkeypatch) -> str:
    """The sbatch script submitit writes for these parameters (srun need not exist here)."""
    import submitit

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))
    ex = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm")
    ex.update_parameters(**params)
    return ex._executor._make_submission_file_text("python -m job", "uid")


def test_one_build_job_and_every_array_waits_for_it(write_sweep, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(G, "cuda_here", lambda: False)
    spec, runs = _gsplat_runs(write_sweep, cuda_arch_list="9.0")
    built, arrays = [], []
    _submit(spec, runs, built, arrays)
    assert len(built) == 1 and len(arrays) == 2  # array_limit=1: two arrays, one build
    ext = spec.output_dir() / "torch_extensions"
    env = [f"export TORCH_EXTENSIONS_DIR={ext}", "export TORCH_CUDA_ARCH_LIST=9.0"]
    build = _sbatch(built[0], tmp_path, monkeypatch)
    assert "#SBATCH --gpus-per-node=1" in build and "#SBATCH --partition=gpu" in build
    assert "#SBATCH --time=60" in build and "--dependency" not in build
    assert re.search(r"#SBATCH --job-name=bench-t-gsplat-build\n", build)
    assert all(line in build.split("# command")[0] for line in env)
    for params in arrays:
        script = _sbatch(params, tmp_path, monkeypatch)
        assert "#SBATCH --dependency=afterok:900" in script and "#SBATCH --kill-on-invalid-dep=yes" in script
        assert all(line in script for line in env) and "#SBATCH --time=600" in script
    assert "build job 900" in capsys.readouterr().out


def test_a_users_dependency_is_kept(write_sweep, monkeypatch):
    monkeypatch.setattr(G, "cuda_here", lambda: False)
    spec, runs = _gsplat_runs(write_sweep, additional={"dependency": "afterok:5"})
    built, arrays = [], []
    _submit(spec, runs, built, arrays)
    assert arrays[0]["slurm_additional_parameters"]["dependency"] == "afterok:5,afterok:900"
    assert not any("TORCH_CUDA_ARCH_LIST" in line for line in arrays[0]["slurm_setup"])


def test_built_here_when_the_submitting_node_has_a_gpu(write_sweep, monkeypatch, tmp_path):
    monkeypatch.setattr(G, "cuda_here", lambda: True)
    seen = []
    monkeypatch.setattr(G, "build_here", lambda env: seen.append(env) or 12.0)
    spec, runs = _gsplat_runs(write_sweep, torch_extensions_dir=str(tmp_path / "lab-ext"), cuda_arch_list="9.0")
    built, arrays = [], []
    _submit(spec, runs, built, arrays)
    assert built == [] and seen == [{"TORCH_EXTENSIONS_DIR": str(tmp_path / "lab-ext"),
                                     "TORCH_CUDA_ARCH_LIST": "9.0"}]
    assert "dependency" not in arrays[0]["slurm_additional_parameters"]
    assert f"export TORCH_EXTENSIONS_DIR={tmp_path / 'lab-ext'}" in arrays[0]["slurm_setup"]


def test_nothing_is_built_when_the_shared_build_matches(write_sweep, monkeypatch, tmp_path):
    monkeypatch.setattr(G, "cuda_here", lambda: pytest.fail("no build decision needed"))
    ext = tmp_path / "ext"
    (ext / E.NAME).mkdir(parents=True)
    (ext / E.NAME / f"{E.NAME}.so").write_bytes(b"")
    (ext / E.NAME / E.MARKER).write_text(json.dumps({"fingerprint": E.fingerprint("9.0")}))
    spec, runs = _gsplat_runs(write_sweep, torch_extensions_dir=str(ext), cuda_arch_list="9.0")
    built, arrays = [], []
    _submit(spec, runs, built, arrays)
    assert built == [] and "dependency" not in arrays[0]["slurm_additional_parameters"]
    # Another arch list (or torch, gsplat, Python) is another build.
    assert not G.already_built(ext, "8.0") and G.already_built(ext, "9.0")


def test_runs_without_gsplat_get_nothing(write_sweep, monkeypatch):
    spec = load_sweep(write_sweep(executor={"kind": "slurm", "resources": {"gpus_per_node": 1}}))
    runs = expand(spec)  # the cpu profile: train.backend torch
    assert G.prebuild_slurm(spec.output_dir(), spec.name, runs, X.SlurmExecutor("slurm")) is None
    spec, runs = _gsplat_runs(write_sweep)
    for r in runs:
        r.resources = r.resources.model_copy(update={"gpus_per_node": 0})
    assert G.prebuild_slurm(spec.output_dir(), spec.name, runs, X.SlurmExecutor("slurm")) is None  # auto without a GPU: torch
    spec, runs = _gsplat_runs(write_sweep, gsplat_build="off")
    pre = G.prebuild_slurm(spec.output_dir(), spec.name, runs, X.SlurmExecutor("slurm"))
    assert pre.dependency is None and pre.setup[0].startswith("export TORCH_EXTENSIONS_DIR=")


def test_extensions_dir_precedence(monkeypatch, tmp_path):
    from bench.harness.spec import Resources

    assert G.extensions_dir(tmp_path, Resources()) == tmp_path / "torch_extensions"
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", "/env/ext")
    assert G.extensions_dir(tmp_path, Resources()) == Path("/env/ext")
    assert G.extensions_dir(tmp_path, Resources(torch_extensions_dir="/cfg/ext")) == Path("/cfg/ext")


def test_per_dataset_resources_cannot_change_the_build(write_sweep):
    with pytest.raises(BenchError, match="cuda_arch_list: unknown key"):
        load_sweep(write_sweep(datasets=[{"name": "synthetic", "resources": {"cuda_arch_list": "9.0"}}]))


def test_local_queue_builds_first_only_when_runs_start_together(write_sweep, monkeypatch):
    calls = []
    monkeypatch.setattr(G, "build_here", lambda env, base_env=None: calls.append(env) or 1.0)
    _, runs = _gsplat_runs(write_sweep)
    G.prebuild_local(runs, ["0"], 1)
    G.prebuild_local(runs, [], 2)
    assert calls == []
    G.prebuild_local(runs, ["0", "1"], 2)
    assert calls == [{}]


def test_a_failed_build_raises_one_line(monkeypatch):
    seen = []

    class Done:
        returncode = 1

    monkeypatch.setattr(G.subprocess, "run", lambda cmd, env: seen.append((cmd, env)) or Done())
    with pytest.raises(BenchError, match="building the CUDA extension on .* failed"):
        G.build_here({"TORCH_CUDA_ARCH_LIST": "9.0"})
    (cmd, env), = seen
    assert cmd[1:] == ["-m", "bench.cli", "doctor", "--build-gsplat"] and env["TORCH_CUDA_ARCH_LIST"] == "9.0"
