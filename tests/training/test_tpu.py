"""``bertjp train tpu``: the plan, its dry-run output, its shell quoting and the executor.

Offline: the Cloud TPU API is replaced by an in-memory client and SSH/gcloud by a
recording runner (fakes of the cloud boundary only); the plan, the Model Garden
configs, the remote scripts (run under bash), the preflight over gs:// (a local
Cloud Storage emulator) and the executor are the real ones.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pathlib
import re
import shlex
import socket
import subprocess
import time

import pytest
import yaml
from google.api_core import exceptions
from google.cloud import tpu_v2

from tests.conftest import REFERENCE
from training import tpu
from training.tpu import executor as tpu_executor
from training.tpu import plan as tpu_plan
from training.tpu import remote as tpu_remote

VOCAB = REFERENCE / "vocab" / "wordpiece_unidic_lite"
CORPUS = REFERENCE / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz"
ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL_DIR = "gs://bkt/models/base-wp"
NODE = "projects/my-project/locations/europe-west4-a/nodes/bertjp-base-wp"
GIT_PACKAGE = "bertjp[train] @ git+https://example.invalid/org/bertjp@v0.1.0"


def args(*extra, model_dir=MODEL_DIR, cc100="gs://bkt/data/cc100", wiki="gs://bkt/data/wiki"):
    return ["--project", "my-project", "--zone", "europe-west4-a", "--cc100-data", cc100,
            "--wikipedia-data", wiki, "--vocab", str(VOCAB), "--model-dir", model_dir,
            *map(str, extra)]


def plan_of(*extra, **kw) -> tpu.Plan:
    return tpu.build_plan(tpu.options_from_args(tpu.make_parser().parse_args(args(*extra, **kw))))


def script_of(step: tpu.Step) -> str:
    return step.argv[step.argv.index("--command") + 1]


def inner_of(start_script: str) -> list[str]:
    """The train command inside a stage's ``bash -c`` launcher, as argv tokens."""
    tokens = shlex.split(start_script)
    return shlex.split(tokens[tokens.index("-c") + 1])


def yaml_of(start_script: str) -> dict:
    tokens = shlex.split(start_script)
    return yaml.safe_load(tokens[tokens.index("%s") + 1])


@pytest.fixture(scope="module")
def default_plan():
    return plan_of()


# ------------------------------------------------------------------ the plan (dry run)


def test_default_plan_has_every_step_in_order(default_plan):
    assert default_plan.kinds() == [
        "preflight", "preflight", "status", "status", "local", "local", "create", "wait",
        "remote", "start", "follow", "start", "follow", "delete"]
    assert [s.number for s in default_plan.stages] == [1, 2]
    assert default_plan.steps[-1].always


def test_create_request_for_a_v3_8(default_plan):
    [create] = default_plan.find("create")
    req = create.request
    assert isinstance(req, tpu_v2.CreateNodeRequest)
    assert req.parent == "projects/my-project/locations/europe-west4-a"
    assert req.node_id == "bertjp-base-wp"
    assert req.node.accelerator_type == "v3-8"
    assert req.node.runtime_version == "tpu-ubuntu2204-base"
    assert not req.node.scheduling_config.spot and not req.node.scheduling_config.preemptible
    assert req.node.network_config.enable_external_ips
    assert req.node.network_config.network == "" and req.node.network_config.subnetwork == ""
    assert list(req.node.service_account.scope) == [tpu_plan.CLOUD_PLATFORM]
    [wait] = default_plan.find("wait")
    assert wait.request.name == NODE
    [delete] = default_plan.find("delete")
    assert isinstance(delete.request, tpu_v2.DeleteNodeRequest) and delete.request.name == NODE


def test_scheduling_and_network_options():
    spot = plan_of("--spot", "--network", "vpc1", "--subnetwork", "sub1", "--no-external-ip",
                   "--accelerator-type", "v4-8", "--tpu-name", "my-tpu",
                   "--package", GIT_PACKAGE).find("create")[0].request
    assert spot.node.scheduling_config.spot and not spot.node.scheduling_config.preemptible
    assert spot.node_id == "my-tpu" and spot.node.accelerator_type == "v4-8"
    assert spot.node.network_config.network == "vpc1"
    assert spot.node.network_config.subnetwork == "sub1"
    assert not spot.node.network_config.enable_external_ips
    preemptible = plan_of("--preemptible", "--runtime-version", "tpu-vm-tf-2.16.1-pjrt",
                          "--package", GIT_PACKAGE)
    req = preemptible.find("create")[0].request
    assert req.node.scheduling_config.preemptible and not req.node.scheduling_config.spot
    assert req.node.runtime_version == "tpu-vm-tf-2.16.1-pjrt"
    iap = plan_of("--no-external-ip", "--package", GIT_PACKAGE).find("remote")[0].argv
    assert "--tunnel-through-iap" in iap


def test_package_is_built_uploaded_and_installed_on_every_worker(default_plan):
    build, upload = default_plan.find("local")
    assert build.argv[1:3] == ["setup.py", "-q"] and build.detail["cwd"] == str(ROOT)
    dist = build.argv[build.argv.index("--dist-dir") + 1]
    assert upload.argv == ["gcloud", "storage", "cp", f"{dist}/bertjp-0.1.0.tar.gz",
                           str(ROOT / "constraints.txt"), f"{MODEL_DIR}/_launcher/"]
    [install] = default_plan.find("remote")
    assert install.argv[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "bertjp-base-wp"]
    assert ["--zone", "europe-west4-a", "--project", "my-project", "--worker=all"] == \
        install.argv[6:11]
    tokens = shlex.split(script_of(install))
    assert "python3.11-venv" in tokens
    assert [f"{MODEL_DIR}/_launcher/bertjp-0.1.0.tar.gz",
            f"{MODEL_DIR}/_launcher/constraints.txt", "bertjp/"] == \
        tokens[tokens.index("cp") + 1:tokens.index("cp") + 4]
    pip = tokens.index("./bertjp/bertjp-0.1.0.tar.gz[train]")
    assert tokens[pip - 3:pip] == ["pip", "install", "-q"]
    assert tokens[pip + 1:pip + 3] == ["-c", "bertjp/constraints.txt"]
    assert tokens[tokens.index("uninstall") + 3] == "tensorflow"
    assert tpu_remote.TENSORFLOW_TPU in tokens
    assert tokens[-3:-1] == ["bertjp-venv/bin/python", "-c"]  # the final check imports both


def test_package_spec_goes_to_pip_as_is():
    plan = plan_of("--package", GIT_PACKAGE)
    assert plan.find("local") == []
    tokens = shlex.split(script_of(plan.find("remote")[0]))
    assert GIT_PACKAGE in tokens and "constraints.txt" not in " ".join(tokens)


def test_stage_commands_and_configs(default_plan):
    start1, start2 = default_plan.find("start")
    assert "--worker=0" in start1.argv
    inner = inner_of(script_of(start1))
    train = inner[inner.index("bertjp-venv/bin/python3"):inner.index(">>")]
    assert train == ["bertjp-venv/bin/python3", "-m", "official.nlp.train",
                     "--experiment=bert/pretraining", "--mode=train_and_eval",
                     f"--model_dir={MODEL_DIR}/stage1-cc100",
                     "--config_file=bertjp/stage1-cc100.yaml"]
    c1, c2 = yaml_of(script_of(start1)), yaml_of(script_of(start2))
    data1 = c1["task"]["train_data"]
    assert (data1["seq_length"], data1["global_batch_size"], data1["max_predictions_per_seq"]) \
        == (128, 2048, 19)
    assert data1["input_path"] == "gs://bkt/data/cc100-*-of-*.tfrecord.gz"
    assert c1["task"]["validation_data"]["input_path"] == data1["input_path"]
    assert c1["task"]["init_checkpoint"] == ""
    assert c1["task"]["model"]["encoder"]["bert"]["vocab_size"] == 32768
    assert c1["runtime"]["distribution_strategy"] == "tpu" and c1["runtime"]["tpu"] == "local"
    assert c1["trainer"]["train_steps"] == 1_000_000
    data2 = c2["task"]["train_data"]
    assert (data2["seq_length"], data2["global_batch_size"], data2["max_predictions_per_seq"]) \
        == (512, 512, 76)
    assert data2["input_path"] == "gs://bkt/data/wiki-*-of-*.tfrecord.gz"
    assert c2["task"]["init_checkpoint"] == f"{MODEL_DIR}/stage1-cc100"
    assert f"--model_dir={MODEL_DIR}/stage2-wikipedia" in inner_of(script_of(start2))


def test_keep_vm_removes_the_delete():
    plan = plan_of("--keep-vm", "--package", GIT_PACKAGE)
    assert "delete" not in plan.kinds() and plan.kinds()[-1] == "follow"


def test_stages_and_train_steps():
    only2 = plan_of("--stages", "2", "--train-steps", "5000", "--package", GIT_PACKAGE)
    assert [s.number for s in only2.stages] == [2]
    assert only2.kinds()[:3] == ["preflight", "status", "require"]
    assert only2.stages[0].train_steps == 5000
    assert only2.find("require")[0].argv == ["gcloud", "storage", "cat",
                                             f"{MODEL_DIR}/stage1-cc100/checkpoint"]
    both = plan_of("--train-steps", "100,200", "--package", GIT_PACKAGE)
    assert [s.train_steps for s in both.stages] == [100, 200]
    assert [s.config.trainer.train_steps for s in both.stages] == [100, 200]
    warmup = both.stages[0].config.trainer.optimizer_config.warmup.polynomial.warmup_steps
    assert warmup == 10  # clipped to 10 % of the stage's steps
    assert plan_of("--preflight-only").kinds() == ["preflight", "preflight"]


def test_repeated_stage_and_step_flags_add_up():
    """``--stages 1 --stages 2`` runs both stages; ``--train-steps N --train-steps N2``
    gives stage 1 N and stage 2 N2 (a repeated flag never silently keeps the last)."""
    plan = plan_of("--stages", "1", "--stages", "2", "--train-steps", "100",
                   "--train-steps", "200", "--package", GIT_PACKAGE)
    assert [s.number for s in plan.stages] == [1, 2]
    assert [s.train_steps for s in plan.stages] == [100, 200]
    with pytest.raises(ValueError, match="--train-steps '1,2,3'"):
        plan_of("--train-steps", "1,2", "--train-steps", "3")


def test_a_warmup_longer_than_a_stage_is_clipped_with_a_warning(capsys):
    assert tpu.main(args("--dry-run", "--package", GIT_PACKAGE, "--train-steps",
                         "2000,100000")) == 0
    out, err = capsys.readouterr()
    assert "and the files gs://bkt/data/cc100-*-of-*.tfrecord.gz matches: exactly" in out
    assert ("warning: stage 1 (cc100): --warmup-steps 10000 is more than 10 % of "
            "--train-steps 2000; warming up for 200 steps instead") in err
    assert "stage 2" not in err  # 10,000 is 10 % of 100,000
    assert tpu.main(args("--dry-run", "--package", GIT_PACKAGE)) == 0
    assert "warning" not in capsys.readouterr().err  # the recipe: 10k of 1M steps


def test_hosts_runtimes_and_multi_host_plan():
    assert [tpu.hosts_of(t) for t in ("v2-8", "v3-8", "v3-32", "v4-32", "v5litepod-16")] == \
        [1, 1, 4, 4, 2]
    assert tpu.default_runtime_version("v5litepod-8") == "v2-alpha-tpuv5-lite"
    with pytest.raises(ValueError, match="not like v3-8"):
        tpu.hosts_of("tpu3")
    pod = plan_of("--accelerator-type", "v3-32", "--package", GIT_PACKAGE)
    assert pod.find("preflight")[0].detail["hosts"] == 4
    assert yaml_of(script_of(pod.find("start")[0]))["runtime"]["tpu"] == "bertjp-base-wp"


@pytest.mark.parametrize("extra, message", [
    (["--tpu-name", "x; rm -rf ~"], "not a valid TPU name"),
    (["--zone", "europe-west4-a;id"], "not a zone"),
    (["--stages", "3"], "must be 1, 2 or 1,2"),
    (["--train-steps", "1,2,3"], "--train-steps"),
    (["--size", "huge"], "unknown model size"),
    (["--accelerator-type", "v3_8"], "not like v3-8"),
])
def test_invalid_options_are_rejected(extra, message):
    with pytest.raises(ValueError, match=message):
        plan_of(*extra)


def test_paths_must_be_on_cloud_storage():
    with pytest.raises(ValueError, match="--model-dir must be a gs:// path"):
        plan_of(model_dir="/tmp/models")
    with pytest.raises(ValueError, match="--cc100-data must be a gs:// path"):
        plan_of(cc100="data/cc100")
    with pytest.raises(ValueError, match="needs --wikipedia-data"):
        plan_of(wiki="")
    assert [s.number for s in plan_of("--stages", "1", wiki="").stages] == [1]
    with pytest.raises(SystemExit):
        tpu.make_parser().parse_args(args("--spot", "--preemptible"))


def test_dry_run_prints_every_request_and_command_in_order(capsys, monkeypatch):
    plan = plan_of("--spot")  # imports Model Garden before subprocess is made to fail

    def forbidden(*a, **k):
        raise AssertionError("--dry-run must not run or create anything")

    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(tpu_v2, "TpuClient", forbidden)
    assert tpu.main(args("--dry-run", "--spot")) == 0
    out = capsys.readouterr().out
    assert out.startswith("bertjp train tpu --dry-run: 14 steps")
    start = out.index("TpuClient.create_node(request=)\n") + 32
    create, _ = json.JSONDecoder().raw_decode(out, start)
    assert create["nodeId"] == "bertjp-base-wp"
    assert create["node"]["acceleratorType"] == "v3-8"
    assert create["node"]["schedulingConfig"]["spot"] is True
    order = ["preflight stage 1", "gcloud storage cat gs://bkt/models/base-wp/stage1-cc100",
             "setup.py", "gcloud storage cp", "TpuClient.create_node", "TpuClient.get_node",
             "gcloud compute tpus tpu-vm ssh bertjp-base-wp", "start stage 1",
             "follow stage 1", "start stage 2", "TpuClient.delete_node"]
    positions = [out.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert '"name": "' + NODE + '"' in out
    # every printed command is a shell line that gives the plan's argv back
    for step in plan.steps:
        if step.argv is not None:
            assert shlex.join(step.argv) in out


def test_dry_run_with_a_cloud_vocab_uses_the_released_size():
    parser = tpu.make_parser()
    argv = args("--dry-run")
    argv[argv.index("--vocab") + 1] = "gs://bkt/vocab/character"
    options = tpu.options_from_args(parser.parse_args(argv + ["--subword", "character"]))
    assert options.vocab_size == 7027


def test_help_describes_the_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        tpu.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--project", "--zone", "--runtime-version", "--spot", "--preemptible",
                 "--network", "--subnetwork", "--tpu-name", "--cc100-data", "--wikipedia-data",
                 "--vocab", "--size", "--subword", "--model-dir", "--stages", "--train-steps",
                 "--package", "--dry-run", "--keep-vm", "--preflight-only",
                 "tpu-ubuntu2204-base", "gcloud compute tpus tpu-vm ssh"):
        assert flag in out
    from bertjp_cli import main as bertjp_main

    with pytest.raises(SystemExit):
        bertjp_main(["train", "tpu", "--help"])
    assert "usage: bertjp train tpu" in capsys.readouterr().out


# ------------------------------------------------------------------ shell quoting


def hostile(tmp: pathlib.Path, what: str) -> str:
    return (f"gs://b k't\"{what}; $(touch {tmp}/p1) `touch {tmp}/p2`; touch {tmp}/p3\n"
            f"touch {tmp}/p4 && x|y >z <w * ~ $HOME \\ 'end")


def test_hostile_names_stay_single_tokens(tmp_path):
    model_dir, data = hostile(tmp_path, "models"), hostile(tmp_path, "data")
    package = f"bertjp[train] @ {hostile(tmp_path, 'pkg')}"
    plan = plan_of("--package", package, model_dir=model_dir, cc100=data)
    assert re.match(r"^bertjp-[a-z0-9-]+$", plan.options.tpu_name)
    for step in plan.steps:
        if step.argv is not None:
            assert shlex.split(shlex.join(step.argv)) == step.argv
    install = shlex.split(script_of(plan.find("remote")[0]))
    assert package in install
    start = script_of(plan.find("start")[0])
    assert f"--model_dir={model_dir}/stage1-cc100" in inner_of(start)
    assert yaml_of(start)["task"]["train_data"]["input_path"] == f"{data}-*-of-*.tfrecord.gz"
    poll = shlex.split(script_of(plan.find("follow")[0]))
    assert f"{model_dir}/stage1-cc100/checkpoint" in poll
    assert plan.find("status")[0].argv[-1] == f"{model_dir}/stage1-cc100/checkpoint"
    assert plan.find("create")[0].request.node.description.startswith("bertjp train tpu: gs://")


def _fake_vm(home: pathlib.Path) -> dict[str, str]:
    """A home directory with a stand-in trainer and gcloud that record their argv."""
    bin_dir, venv = home / "bin", home / "bertjp-venv" / "bin"
    bin_dir.mkdir()
    venv.mkdir(parents=True)
    (venv / "python3").write_text(
        '#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done > "$HOME/train.argv"\n'
        'echo "train | step: 100 | loss 7.5"\necho "train | step: 200 | loss 7.1"\nexit 3\n')
    (bin_dir / "gcloud").write_text(
        '#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done > "$HOME/gcloud.argv"\n'
        'echo \'model_checkpoint_path: "ckpt-200"\'\necho \'all_model_checkpoint_paths: x\'\n')
    for tool in (venv / "python3", bin_dir / "gcloud"):
        tool.chmod(0o755)
    return {"HOME": str(home), "PATH": f"{bin_dir}:/usr/bin:/bin", "LANG": "C.UTF-8"}


def _bash(script: str, env: dict[str, str], cwd: pathlib.Path) -> str:
    done = subprocess.run(["bash", "-c", script], env=env, cwd=cwd, text=True,
                          capture_output=True, timeout=30, check=True)
    return done.stdout


def test_remote_scripts_run_under_bash_with_hostile_names(tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    model_dir, data = hostile(tmp_path, "models"), hostile(tmp_path, "data")
    plan = plan_of("--package", GIT_PACKAGE, "--stages", "1", model_dir=model_dir, cc100=data)
    stage, env = plan.stages[0], _fake_vm(home)
    assert "started stage 1" in _bash(script_of(plan.find("start")[0]), env, elsewhere)
    rc_file = home / "bertjp" / "stage1-cc100.rc"
    for _ in range(100):
        if rc_file.exists() and rc_file.read_text().strip():
            break
        time.sleep(0.1)
    assert rc_file.read_text().strip() == "3"
    argv = (home / "train.argv").read_bytes().decode().split("\0")[:-1]
    assert argv == tpu_remote.train_argv(stage)[1:]
    assert (home / "bertjp" / "stage1-cc100.yaml").read_text() == stage.config_yaml
    for _ in range(100):  # the launcher shell exits just after writing the exit code
        status = tpu.parse_poll_output(_bash(tpu_remote.poll_command(stage, 0), env, elsewhere))
        if not status.alive:
            break
        time.sleep(0.1)
    assert (status.rc, status.alive, status.step, status.lines) == (3, False, 200, 2)
    assert status.log == ["train | step: 100 | loss 7.5", "train | step: 200 | loss 7.1"]
    gcloud = (home / "gcloud.argv").read_bytes().decode().split("\0")[:-1]
    assert gcloud == ["storage", "cat", f"{model_dir}/stage1-cc100/checkpoint"]
    assert tpu.parse_poll_output(
        _bash(tpu_remote.poll_command(stage, 2), env, elsewhere)).log == []
    leaked = [p for p in tmp_path.rglob("*") if p.name in ("p1", "p2", "p3", "p4", "z")]
    assert leaked == []


# ------------------------------------------------------------------ the executor


class FakeOperation:
    def __init__(self, value=None):
        self.value = value

    def result(self, timeout=None):
        return self.value


class FakeTpuClient:
    """In-memory stand-in for ``tpu_v2.TpuClient``: nodes are READY on the second look."""

    def __init__(self, existing: tuple[str, ...] = ()):
        self.nodes = {name: tpu_v2.Node.State.READY for name in existing}
        self.calls: list[tuple[str, str]] = []
        self.state_after_create = tpu_v2.Node.State.READY

    def create_node(self, request):
        name = f"{request.parent}/nodes/{request.node_id}"
        self.calls.append(("create", name))
        if name in self.nodes:
            raise exceptions.AlreadyExists(f"{name} exists")
        self.nodes[name] = tpu_v2.Node.State.CREATING
        return FakeOperation(tpu_v2.Node(name=name, state=tpu_v2.Node.State.CREATING))

    def get_node(self, request):
        self.calls.append(("get", request.name))
        if request.name not in self.nodes:
            raise exceptions.NotFound(request.name)
        state = self.nodes[request.name]
        if state == tpu_v2.Node.State.CREATING:
            self.nodes[request.name] = self.state_after_create
        return tpu_v2.Node(name=request.name, state=state)

    def delete_node(self, request):
        self.calls.append(("delete", request.name))
        if self.nodes.pop(request.name, None) is None:
            raise exceptions.NotFound(request.name)
        return FakeOperation()


def poll_output(rc="", step=None, lines=("train | step: 1000 | loss 6.2",), alive=True):
    checkpoint = f'model_checkpoint_path: "ckpt-{step}"' if step is not None else ""
    return "\n".join(["@@lines", str(len(lines)), "@@rc", str(rc), "@@alive",
                      "yes" if alive else "", "@@checkpoint", checkpoint, "@@log", *lines, ""])


def _classify(script: str) -> tuple[str, str]:
    """(poll|start|install, stage number or ""); stage 2's config names stage 1's dir."""
    kind = "poll" if "echo @@lines" in script else (
        "start" if "nohup setsid" in script else "install")
    stage = "2" if "bertjp/stage2-wikipedia" in script else (
        "1" if "bertjp/stage1-cc100" in script else "")
    return kind, stage


class FakeRunner:
    """Records commands; answers gcloud storage cat and SSH like a VM would."""

    def __init__(self, checkpoints=None, polls=None, fail=None, interrupt=None):
        self.calls: list[list[str]] = []
        self.checkpoints = checkpoints or {}
        self.polls = {k: list(v) for k, v in (polls or {}).items()}
        self.fail, self.interrupt = fail, interrupt

    def __call__(self, argv, cwd=None, capture=False):
        argv = list(argv)
        self.calls.append(argv)
        if argv[:3] == ["gcloud", "storage", "cat"]:
            step = self.checkpoints.get(argv[3].rsplit("/", 2)[-2])
            return tpu.CommandResult(0, f'model_checkpoint_path: "ckpt-{step}"\n') if step \
                else tpu.CommandResult(1, "", "No URLs matched")
        if "ssh" not in argv:
            return tpu.CommandResult(0)
        kind, stage = _classify(argv[argv.index("--command") + 1])
        which = f"{kind}:stage{stage}" if stage else kind
        if which == self.interrupt:
            raise KeyboardInterrupt
        if which == self.fail:
            return tpu.CommandResult(255, "", "ssh: connect to host: Connection refused")
        if kind == "poll":
            return tpu.CommandResult(0, self.polls[f"stage{stage}"].pop(0))
        return tpu.CommandResult(0)

    def kinds(self) -> list[str]:
        out = []
        for argv in self.calls:
            if "ssh" in argv:
                kind, stage = _classify(argv[argv.index("--command") + 1])
                out.append(f"{kind}:{stage}" if stage else kind)
            else:
                out.append(" ".join(argv[:3]))
        return out


class Harness:
    """Runs a plan with the fakes, without its preflight steps (tested over gs:// below)."""

    def __init__(self, client: FakeTpuClient, runner: FakeRunner):
        self.client, self.runner = client, runner
        self.out, self.sleeps = io.StringIO(), []

    def run(self, plan: tpu.Plan) -> int:
        plan = dataclasses.replace(plan, steps=[s for s in plan.steps if s.kind != "preflight"])
        return tpu.Executor(lambda: self.client, self.runner, sleep=self.sleeps.append,
                            out=self.out).run(plan)

    @property
    def text(self) -> str:
        return self.out.getvalue()


DONE = {"stage1": [poll_output(step=500), poll_output(rc=0, step=1000, lines=())],
        "stage2": [poll_output(rc=0, step=1000)]}


@pytest.fixture(scope="module")
def small_plan():
    return plan_of("--train-steps", "1000", "--package", GIT_PACKAGE, "--poll-seconds", "7")


def test_executor_runs_both_stages_and_deletes_the_vm(small_plan):
    run = Harness(FakeTpuClient(), FakeRunner(polls=DONE))
    assert run.run(small_plan) == 0
    assert run.runner.kinds() == ["gcloud storage cat", "gcloud storage cat", "install",
                                  "start:1", "poll:1", "poll:1", "start:2", "poll:2"]
    assert run.client.calls == [("create", NODE), ("get", NODE), ("get", NODE),
                                ("delete", NODE)]
    assert run.client.nodes == {}
    assert run.sleeps == [tpu_executor.READY_POLL_S, 7.0]
    assert "[cc100] train | step: 1000 | loss 6.2" in run.text
    assert "[cc100] latest checkpoint: step 500 of 1,000" in run.text
    assert "[cc100] latest checkpoint: step 1,000 of 1,000" in run.text
    assert "stage 2 (wikipedia) finished" in run.text


def test_executor_deletes_the_vm_when_a_step_fails(small_plan):
    run = Harness(FakeTpuClient(), FakeRunner(polls=DONE, fail="start:stage1"))
    with pytest.raises(RuntimeError, match="start stage 1 .* exit code 255"):
        run.run(small_plan)
    assert run.client.calls[-1] == ("delete", NODE) and run.client.nodes == {}
    assert "start:2" not in run.runner.kinds()


def test_executor_deletes_the_vm_on_ctrl_c(small_plan):
    run = Harness(FakeTpuClient(), FakeRunner(polls=DONE, interrupt="poll:stage1"))
    with pytest.raises(KeyboardInterrupt):
        run.run(small_plan)
    assert run.client.calls[-1] == ("delete", NODE) and run.client.nodes == {}
    assert "interrupted" in run.text and f"deleted {NODE}" in run.text


def test_executor_deletes_the_vm_when_training_fails(small_plan):
    run = Harness(FakeTpuClient(), FakeRunner(polls={"stage1": [poll_output(rc=1)]}))
    with pytest.raises(RuntimeError, match="Model Garden exited with 1"):
        run.run(small_plan)
    assert run.client.calls[-1] == ("delete", NODE)


def test_executor_reports_a_preempted_vm(small_plan):
    client = FakeTpuClient()

    class Preempting(FakeRunner):
        def __call__(self, argv, cwd=None, capture=False):
            if "echo @@lines" in argv[-1]:  # the VM went away under the first poll
                client.nodes[NODE] = tpu_v2.Node.State.PREEMPTED
                return tpu.CommandResult(255, "", "ssh: connect to host: timed out")
            return super().__call__(argv, cwd, capture)

    run = Harness(client, Preempting(polls=DONE))
    with pytest.raises(RuntimeError, match="PREEMPTED .* run the same command again"):
        run.run(small_plan)
    assert client.calls[-1] == ("delete", NODE)


def test_keep_vm_leaves_the_vm_after_a_failure():
    plan = plan_of("--keep-vm", "--train-steps", "1000", "--package", GIT_PACKAGE)
    run = Harness(FakeTpuClient(), FakeRunner(polls=DONE, fail="install"))
    with pytest.raises(RuntimeError, match="install"):
        run.run(plan)
    assert ("delete", NODE) not in run.client.calls and NODE in run.client.nodes


def test_an_existing_vm_of_the_same_name_is_never_deleted(small_plan):
    run = Harness(FakeTpuClient(existing=(NODE,)), FakeRunner(polls=DONE))
    with pytest.raises(RuntimeError, match="already exists"):
        run.run(small_plan)
    assert run.client.calls == [("create", NODE)] and NODE in run.client.nodes


def test_complete_stages_are_skipped(small_plan):
    run = Harness(FakeTpuClient(), FakeRunner(checkpoints={"stage1-cc100": 1000}, polls=DONE))
    assert run.run(small_plan) == 0
    assert run.runner.kinds() == ["gcloud storage cat", "gcloud storage cat", "install",
                                  "start:2", "poll:2"]
    assert "checkpoint at step 1,000 >= 1,000: complete, skipped" in run.text
    run = Harness(FakeTpuClient(), FakeRunner(
        checkpoints={"stage1-cc100": 1000, "stage2-wikipedia": 1200}))
    assert run.run(small_plan) == 0
    assert run.client.calls == [] and run.runner.kinds() == ["gcloud storage cat"] * 2


def test_stage_2_alone_needs_stage_1_weights():
    plan = plan_of("--stages", "2", "--train-steps", "1000", "--package", GIT_PACKAGE)
    run = Harness(FakeTpuClient(), FakeRunner())
    with pytest.raises(ValueError, match="holds no checkpoint; run stage 1 first"):
        run.run(plan)
    assert run.client.calls == []
    run = Harness(FakeTpuClient(), FakeRunner(checkpoints={"stage1-cc100": 1000}, polls=DONE))
    assert run.run(plan) == 0
    assert run.runner.kinds()[-2:] == ["start:2", "poll:2"]


# ------------------------------------------------------------------ preflight over gs://


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    """A local Cloud Storage emulator holding one real record set (seq 128, 2 shards) as
    both stages' (``gs://tb/data/cc100-*`` and ``gs://tb/data/wiki-*``, each with its
    manifest); yields the local manifest."""
    from apache_beam.internal.gcp import auth
    from gcp_storage_emulator.server import create_server

    from pipelines import pretraining_data

    manifest = pretraining_data.run([
        "--input", str(CORPUS), "--vocab", str(VOCAB), "--output",
        str(tmp_path_factory.mktemp("ptd") / "data"), "--num-shards", "2", "--dupe-factor", "1",
        "--max-seq-length", "128", "--max-predictions-per-seq", "19"])
    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="tb")
    server.start()
    env = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}", "NO_GCE_CHECK": "true",
           "GCE_METADATA_HOST": "127.0.0.1:1", "GCE_METADATA_IP": "127.0.0.1:1"}
    saved_env = {k: os.environ.get(k) for k in env}
    saved_auth = (auth._Credentials._credentials_init, auth._Credentials._credentials)
    os.environ.update(env)
    auth._Credentials._credentials_init, auth._Credentials._credentials = True, None
    try:
        for name in ("cc100", "wiki"):
            upload_records(f"gs://tb/data/{name}", manifest, local_shards(manifest))
        yield manifest
    finally:
        server.stop()
        auth._Credentials._credentials_init, auth._Credentials._credentials = saved_auth
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _upload(path: str, data: bytes) -> None:
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)  # as is: Beam would gzip a .gz path's bytes again


def local_shards(manifest: dict) -> list[pathlib.Path]:
    """The shard files a local run's manifest lists, in order."""
    return [pathlib.Path(o["path"]) for o in manifest["outputs"] if o["role"] == "shard"]


def upload_records(prefix: str, manifest: dict, shards: list[pathlib.Path]) -> dict:
    """Writes ``PREFIX.manifest.json``: ``manifest`` with its shards renamed to
    ``PREFIX-SSSSS-of-NNNNN.tfrecord.gz``, and copies ``shards`` (some or all of the
    local files it lists) to their new names; returns the renamed manifest."""
    renamed = json.loads(json.dumps(manifest))
    for output in renamed["outputs"]:
        if output["role"] == "shard":
            name = os.path.basename(output["path"])
            output["path"] = prefix + name[name.index("-"):]
    for shard in shards:
        _upload(prefix + shard.name[shard.name.index("-"):], shard.read_bytes())
    _upload(f"{prefix}.manifest.json", json.dumps(renamed).encode("utf-8"))
    return renamed


def gs_args(*extra):
    return args(*extra, model_dir="gs://tb/models/x", cc100="gs://tb/data/cc100",
                wiki="gs://tb/data/wiki")


def test_preflight_only_reads_manifests_from_cloud_storage(gcs, capsys):
    assert tpu.main(gs_args("--preflight-only", "--stages", "1")) == 0
    out = capsys.readouterr().out
    assert f"{gcs['summary']['instances']:,} instances in 2 shard(s), seq 128" in out
    assert "stage 1 (cc100): OK" in out
    assert tpu.main(gs_args("--preflight-only")) == 1
    out = capsys.readouterr().out
    assert "stage 1 (cc100): OK" in out
    assert "problem: seq length: the records have 128, the experiment expects 512" in out
    assert tpu.main(gs_args("--preflight-only", "--stages", "1", "--accelerator-type",
                            "v3-32")) == 1
    assert "fewer than the 4 hosts" in capsys.readouterr().out


def test_preflight_problems_stop_a_run_before_the_vm_exists(gcs):
    plan = tpu.build_plan(tpu.options_from_args(tpu.make_parser().parse_args(
        gs_args("--package", GIT_PACKAGE, "--train-steps", "1000"))))
    client, runner = FakeTpuClient(), FakeRunner(polls=DONE)
    executor = tpu.Executor(lambda: client, runner, sleep=lambda s: None, out=io.StringIO())
    with pytest.raises(ValueError, match=r"preflight found \d+ problem.*seq length"):
        executor.run(plan)
    assert client.calls == [] and runner.calls == []


def test_preflight_checks_the_files_on_cloud_storage(gcs, capsys):
    """Stale shards of an earlier run, a truncated shard, a missing one and no shards at
    all are problems."""
    shards = local_shards(gcs)
    upload_records("gs://tb/stale/cc100", gcs, shards)
    for i in range(3):  # an earlier run with 3 shards: 5 files, the manifest lists 2
        _upload(f"gs://tb/stale/cc100-0000{i}-of-00003.tfrecord.gz", b"old")
    upload_records("gs://tb/cut/cc100", gcs, shards)
    _upload("gs://tb/cut/cc100-00001-of-00002.tfrecord.gz", shards[1].read_bytes()[:1000])
    upload_records("gs://tb/gone/cc100", gcs, shards[:1])
    upload_records("gs://tb/empty/cc100", gcs, [])  # the manifest alone
    runs = {}
    for name in ("stale", "cut", "gone", "empty"):
        argv = args("--preflight-only", "--stages", "1", model_dir="gs://tb/models/x",
                    cc100=f"gs://tb/{name}/cc100")
        runs[name] = (tpu.main(argv), capsys.readouterr().out)
    code, out = runs["stale"]
    assert code == 1 and "stage 1 (cc100): 3 problem(s)" in out
    for i in range(3):
        assert (f"problem: files: gs://tb/stale/cc100-0000{i}-of-00003.tfrecord.gz is not in "
                "gs://tb/stale/cc100.manifest.json") in out
    code, out = runs["cut"]
    size = shards[1].stat().st_size
    assert code == 1 and (f"problem: files: gs://tb/cut/cc100-00001-of-00002.tfrecord.gz has "
                          f"1,000 bytes, gs://tb/cut/cc100.manifest.json says {size:,}") in out
    code, out = runs["gone"]
    assert code == 1 and ("problem: files: 1 of the 2 files gs://tb/gone/cc100.manifest.json "
                          "lists are not matched: cc100-00001-of-00002.tfrecord.gz") in out
    code, out = runs["empty"]
    assert code == 1 and ("problem: --cc100-data gs://tb/empty/cc100-*-of-*.tfrecord.gz "
                          "matches no files") in out
