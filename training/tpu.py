"""``bertjp train tpu``: pretrain both stages on a Cloud TPU VM, then delete it.

The launcher builds a :class:`Plan` (a list of steps) from the options with a pure
function, :func:`build_plan`; an :class:`Executor` then runs the steps, or
:func:`print_plan` prints them (``--dry-run``). The steps, in order:

1. preflight: each stage's manifest (``PREFIX.manifest.json``) against its experiment,
   and the files ``PREFIX-*-of-*.tfrecord.gz`` matches against the manifest's shards;
2. checkpoint status: a stage whose model dir already holds a checkpoint at its
   train steps is skipped (``gcloud storage cat MODEL_DIR/STAGE/checkpoint``);
3. the package: an sdist built here and copied to ``MODEL_DIR/_launcher/``
   (or ``--package``);
4. the TPU VM: ``TpuClient.create_node`` (google-cloud-tpu, Application Default
   Credentials), then ``get_node`` until it is READY;
5. install on every worker, over SSH: Python 3.11 venv, the package with its
   ``[train]`` extra, ``tensorflow-tpu`` in place of ``tensorflow``;
6. each stage: write its config YAML on worker 0 and start
   ``python3 -m official.nlp.train --experiment=bert/pretraining --mode=train_and_eval``
   detached (``nohup setsid``), then poll its log, exit code and latest checkpoint;
7. ``TpuClient.delete_node``: always, also after a failure or Ctrl-C (not with
   ``--keep-vm``).

Remote commands run with ``gcloud compute tpus tpu-vm ssh NAME --zone Z --project P
--worker=W --command CMD`` (the gcloud CLI's own login); every value put into CMD is
quoted with :func:`shlex.quote`. Nothing here reads or prints credentials.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

__all__ = [
    "CommandResult",
    "Executor",
    "Plan",
    "Stage",
    "TpuOptions",
    "build_plan",
    "default_runtime_version",
    "default_tpu_name",
    "hosts_of",
    "main",
    "make_parser",
    "options_from_args",
    "parse_poll_output",
    "print_plan",
    "shard_pattern",
    "subprocess_runner",
    "warmup_warnings",
]

DEFAULT_ACCELERATOR = "v3-8"
# The project pins TensorFlow 2.20 and tf-models-official 2.20 on Python 3.11; the
# TPU VM TensorFlow images stop at tpu-vm-tf-2.16.1-* (Python 3.10), whose TensorFlow
# would be replaced anyway. So the VM gets the plain base image of its TPU generation
# and the install step adds Python 3.11, the package and tensorflow-tpu 2.20.
RUNTIME_BY_FAMILY = {
    "v2": "tpu-ubuntu2204-base",
    "v3": "tpu-ubuntu2204-base",
    "v4": "tpu-ubuntu2204-base",
    "v5litepod": "v2-alpha-tpuv5-lite",
    "v5e": "v2-alpha-tpuv5-lite",
    "v5p": "v2-alpha-tpuv5",
    "v6e": "v2-alpha-tpuv6e",
}
TENSORFLOW_TPU = "tensorflow-tpu==2.20.0"
PYTHON = "python3.11"
VENV = "bertjp-venv"  # on each worker, under the login's home directory
WORKDIR = "bertjp"  # configs, logs, exit codes and the package on the VM
LAUNCHER_DIR = "_launcher"  # under --model-dir: the uploaded package
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
LOG_LINES_PER_POLL = 20
SSH_FAILURES_ALLOWED = 5
CREATE_TIMEOUT_S = 1800
READY_TIMEOUT_S = 1800
READY_POLL_S = 30
_TPU_NAME = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
_ZONE = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
_PROJECT = re.compile(r"^(?:[a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_ACCELERATOR = re.compile(r"^(v[0-9]+[a-z]*)-([0-9]+)$")
_CKPT_STEP = re.compile(r"ckpt-([0-9]+)")


@dataclasses.dataclass(frozen=True)
class StageDef:
    """A training stage of the recipe: its number, data name and model subdirectory."""

    number: int
    data: str
    subdir: str
    flag: str


STAGE_DEFS = {
    1: StageDef(1, "cc100", "stage1-cc100", "--cc100-data"),
    2: StageDef(2, "wikipedia", "stage2-wikipedia", "--wikipedia-data"),
}


# --------------------------------------------------------------------------- options


@dataclasses.dataclass(frozen=True)
class TpuOptions:
    """Everything :func:`build_plan` needs; see :func:`make_parser` for each field."""

    project: str
    zone: str
    model_dir: str
    vocab: str
    vocab_size: int
    data: dict[int, str]
    stages: tuple[int, ...] = (1, 2)
    size: str = "base"
    subword: str = "wordpiece"
    train_steps: dict[int, int] = dataclasses.field(default_factory=dict)
    warmup_steps: int = 10_000
    tpu_name: str = ""
    accelerator_type: str = DEFAULT_ACCELERATOR
    runtime_version: str = ""
    spot: bool = False
    preemptible: bool = False
    network: str = ""
    subnetwork: str = ""
    external_ips: bool = True
    service_account: str = ""
    package: str = ""
    keep_vm: bool = False
    preflight_only: bool = False
    poll_seconds: float = 300.0
    source_dir: str = str(pathlib.Path(__file__).resolve().parents[1])


def hosts_of(accelerator_type: str) -> int:
    """Hosts (VMs) of a TPU slice: one per 8 TensorCores (v2-v4, v5p) or chips (v5e).

    ``v3-8`` -> 1, ``v3-32`` -> 4, ``v4-32`` -> 4.

    Raises:
      ValueError: when the name is not ``v<generation>-<count>``.
    """
    match = _ACCELERATOR.match(accelerator_type)
    if not match or int(match.group(2)) < 1:
        raise ValueError(f"accelerator type {accelerator_type!r} is not like v3-8 or v4-32")
    return max(1, math.ceil(int(match.group(2)) / 8))


def default_runtime_version(accelerator_type: str) -> str:
    """The TPU software version used when ``--runtime-version`` is not given.

    Raises:
      ValueError: for a TPU generation without a known base image.
    """
    family = accelerator_type.rsplit("-", 1)[0]
    if family not in RUNTIME_BY_FAMILY:
        raise ValueError(f"no default runtime for {accelerator_type!r}; pass --runtime-version")
    return RUNTIME_BY_FAMILY[family]


def default_tpu_name(model_dir: str) -> str:
    """``bertjp-<last part of --model-dir>``, lowercased to a valid TPU node id."""
    name = model_dir.rstrip("/").rsplit("/", 1)[-1].lower()
    slug = re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "train"
    return ("bertjp-" + slug)[:63].rstrip("-")


def _check_gs(flag: str, value: str) -> None:
    if not value.startswith("gs://") or len(value) <= len("gs://"):
        raise ValueError(f"{flag} must be a gs:// path (the TPU VM reads and writes Cloud "
                         f"Storage), got {value!r}")


def _check_names(options: TpuOptions) -> None:
    if not _TPU_NAME.match(options.tpu_name):
        raise ValueError(f"--tpu-name {options.tpu_name!r} is not a valid TPU name (1-63 of "
                         "a-z, 0-9 and '-', starting with a letter)")
    if not _ZONE.match(options.zone):
        raise ValueError(f"--zone {options.zone!r} is not a zone like europe-west4-a")
    if not _PROJECT.match(options.project):
        raise ValueError(f"--project {options.project!r} is not a project id")
    if options.spot and options.preemptible:
        raise ValueError("--spot and --preemptible exclude each other")


def validate(options: TpuOptions) -> None:
    """Checks names, paths and the stages' data.

    Raises:
      ValueError: naming the flag to fix.
    """
    _check_names(options)
    hosts_of(options.accelerator_type)
    _check_gs("--model-dir", options.model_dir)
    if not options.stages:
        raise ValueError("--stages names no stage (use 1, 2 or 1,2)")
    for number in options.stages:
        stage = STAGE_DEFS[number]
        if not options.data.get(number):
            raise ValueError(f"stage {number} ({stage.data}) needs {stage.flag} gs://PREFIX")
        _check_gs(stage.flag, options.data[number])


# --------------------------------------------------------------------------- plan


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage as planned: where it reads and writes and its Model Garden config."""

    number: int
    data: str
    prefix: str
    model_dir: str
    train_steps: int
    init_checkpoint: str
    config: Any
    config_yaml: str

    @property
    def label(self) -> str:
        """``stage 1 (cc100)``: how messages name the stage."""
        return f"stage {self.number} ({self.data})"

    @property
    def files(self) -> str:
        """Basename of this stage's config, log, pid and exit-code files on the VM."""
        return f"{WORKDIR}/{STAGE_DEFS[self.number].subdir}"


@dataclasses.dataclass
class Step:
    """A step of a :class:`Plan`; ``kind`` selects the executor's handler."""

    kind: str
    title: str
    argv: list[str] | None = None
    request: Any = None
    stage: Stage | None = None
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)
    always: bool = False


@dataclasses.dataclass
class Plan:
    """The ordered steps of one ``bertjp train tpu`` run."""

    options: TpuOptions
    steps: list[Step]
    stages: list[Stage]

    def kinds(self) -> list[str]:
        """The steps' kinds, in order."""
        return [s.kind for s in self.steps]

    def find(self, kind: str) -> list[Step]:
        """The steps of one kind, in order."""
        return [s for s in self.steps if s.kind == kind]


def _tpu_types():
    from google.cloud import tpu_v2

    return tpu_v2


def node_path(options: TpuOptions) -> str:
    """``projects/P/locations/Z/nodes/NAME``."""
    return f"projects/{options.project}/locations/{options.zone}/nodes/{options.tpu_name}"


def create_request(options: TpuOptions):
    """The ``CreateNodeRequest`` of the TPU VM."""
    tpu_v2 = _tpu_types()
    node = tpu_v2.Node(
        accelerator_type=options.accelerator_type,
        runtime_version=options.runtime_version,
        description=f"bertjp train tpu: {options.model_dir}"[:512],
        network_config=tpu_v2.NetworkConfig(network=options.network,
                                            subnetwork=options.subnetwork,
                                            enable_external_ips=options.external_ips),
        scheduling_config=tpu_v2.SchedulingConfig(spot=options.spot,
                                                  preemptible=options.preemptible),
        service_account=tpu_v2.ServiceAccount(email=options.service_account,
                                              scope=[CLOUD_PLATFORM]),
        labels={"created-by": "bertjp"},
    )
    return tpu_v2.CreateNodeRequest(parent=f"projects/{options.project}/locations/"
                                    f"{options.zone}", node_id=options.tpu_name, node=node)


def shard_pattern(prefix: str) -> str:
    """The files a stage reads: ``PREFIX-*-of-*.tfrecord.gz``."""
    return f"{prefix}-*-of-*.tfrecord.gz"


def _stage_config(options: TpuOptions, number: int, init: str):
    from training import configs

    pattern = shard_pattern(options.data[number])
    steps = options.train_steps.get(number, 1_000_000)
    config = configs.experiment_config(
        options.size, options.vocab_size, STAGE_DEFS[number].data, pattern,
        train_steps=steps, warmup_steps=options.warmup_steps, init_checkpoint=init)
    tpu = "local" if hosts_of(options.accelerator_type) == 1 else options.tpu_name
    config.override({"runtime": {"distribution_strategy": "tpu", "tpu": tpu}}, is_strict=True)
    return config, steps


def plan_stages(options: TpuOptions) -> list[Stage]:
    """The selected stages; stage 2 starts from stage 1's model dir."""
    from training import configs

    root = options.model_dir.rstrip("/")
    stages = []
    for number in options.stages:
        model_dir = f"{root}/{STAGE_DEFS[number].subdir}"
        init = f"{root}/{STAGE_DEFS[1].subdir}" if number == 2 else ""
        config, steps = _stage_config(options, number, init)
        stages.append(Stage(number, STAGE_DEFS[number].data, options.data[number], model_dir,
                            steps, init, config, configs.to_yaml(config)))
    return stages


def ssh_argv(options: TpuOptions, command: str, worker: str = "all") -> list[str]:
    """``gcloud compute tpus tpu-vm ssh`` running ``command`` on ``worker`` (all, 0, ...)."""
    argv = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", options.tpu_name,
            "--zone", options.zone, "--project", options.project, f"--worker={worker}",
            "--quiet"]
    if not options.external_ips:
        argv.append("--tunnel-through-iap")
    return argv + ["--command", command]


def _package_source(options: TpuOptions) -> tuple[str, str]:
    """(kind, value): ``build`` (sdist of source_dir), ``file``, ``gs`` or ``pip``."""
    spec = options.package
    if not spec:
        if not (pathlib.Path(options.source_dir) / "setup.py").is_file():
            raise ValueError(f"building the package needs a source checkout ({options.source_dir}"
                             "/setup.py not found); pass --package SPEC")
        return "build", options.source_dir
    if spec.startswith("gs://"):
        return "gs", spec
    if spec.endswith((".tar.gz", ".whl")) and os.path.isfile(spec):
        return "file", os.path.abspath(spec)
    return "pip", spec


def _package_steps(options: TpuOptions) -> tuple[list[Step], list[str], list[str]]:
    """Local steps that stage the package, the remote commands that install it, and
    the pip constraint arguments (``-c FILE``) for the later installs."""
    kind, value = _package_source(options)
    if kind == "pip":
        return [], [_pip(value)], []
    launcher = f"{options.model_dir.rstrip('/')}/{LAUNCHER_DIR}"
    steps: list[Step] = []
    if kind == "build":
        from bertjp.version import __version__

        dist = os.path.join(tempfile.gettempdir(), f"bertjp-tpu-{options.tpu_name}")
        steps.append(Step("local", "build the package's sdist here", argv=[
            sys.executable, "setup.py", "-q", "egg_info", "--egg-base", dist,
            "sdist", "--dist-dir", dist], detail={"cwd": value, "mkdir": dist}))
        uploads = [os.path.join(dist, f"bertjp-{__version__}.tar.gz"), *_constraints(options)]
    else:
        uploads = [value]
    if kind != "gs":
        steps.append(Step("local", f"copy the package to {launcher}/",
                          argv=["gcloud", "storage", "cp", *uploads, launcher + "/"]))
        uploads = [f"{launcher}/{os.path.basename(u)}" for u in uploads]
    on_vm = [f"{WORKDIR}/{os.path.basename(u)}" for u in uploads]
    constraints = ["-c", on_vm[1]] if len(on_vm) > 1 else []
    remote = [f"mkdir -p {WORKDIR}",
              shlex.join(["gcloud", "storage", "cp", *uploads, WORKDIR + "/"]),
              _pip(f"./{on_vm[0]}[train]", *constraints)]
    return steps, remote, constraints


def _constraints(options: TpuOptions) -> list[str]:
    path = pathlib.Path(options.source_dir) / "constraints.txt"
    return [str(path)] if path.is_file() else []


def _pip(*args: str) -> str:
    return shlex.join([f"{VENV}/bin/python", "-m", "pip", "install", "-q", *args])


def install_command(remote_package_commands: list[str], constraints: list[str]) -> str:
    """The install script run on every worker (commands joined with ``&&``)."""
    python = f"{VENV}/bin/python"
    commands = [
        "cd",
        "sudo apt-get update -qq",
        f"sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {PYTHON} {PYTHON}-venv",
        f"{PYTHON} -m venv {VENV}",
        f"{python} -m pip install -q --upgrade pip",
        *remote_package_commands,
        f"{python} -m pip uninstall -q -y tensorflow",
        _pip(TENSORFLOW_TPU, *constraints),
        shlex.join([python, "-c", "import official.nlp.train, tensorflow as tf; "
                    "print(tf.__version__, tf.config.list_logical_devices())"]),
    ]
    return " && ".join(commands)


def train_argv(stage: Stage) -> list[str]:
    """The Model Garden command of a stage, as run on worker 0 (from the home directory)."""
    return [f"{VENV}/bin/python3", "-m", "official.nlp.train", "--experiment=bert/pretraining",
            "--mode=train_and_eval", f"--model_dir={stage.model_dir}",
            f"--config_file={stage.files}.yaml"]


def start_command(stage: Stage) -> str:
    """Writes the stage's config YAML and starts training detached from the SSH session.

    The log goes to ``bertjp/<stage>.log`` (appended), the trainer's pid to ``.pid`` and
    its exit code to ``.rc`` when it ends.
    """
    files = stage.files
    inner = (f"echo $$ > {files}.pid; {shlex.join(train_argv(stage))} >> {files}.log 2>&1; "
             f"echo $? > {files}.rc")
    return " && ".join([
        "cd", f"mkdir -p {WORKDIR}",
        f"printf %s {shlex.quote(stage.config_yaml)} > {files}.yaml",
        f"rm -f {files}.rc",
        f"{{ nohup setsid bash -c {shlex.quote(inner)} > /dev/null 2>&1 < /dev/null & }}",
        shlex.join(["echo", "started", stage.label]),
    ])


def poll_command(stage: Stage, seen_lines: int) -> str:
    """Prints the log's line count, exit code, liveness, latest checkpoint and new lines."""
    files = stage.files
    checkpoint = shlex.quote(f"{stage.model_dir}/checkpoint")
    return "\n".join([
        "cd",
        "echo @@lines", f"cat {files}.log 2>/dev/null | wc -l",
        "echo @@rc", f"cat {files}.rc 2>/dev/null",
        "echo @@alive", f'kill -0 "$(cat {files}.pid 2>/dev/null)" 2>/dev/null && echo yes',
        "echo @@checkpoint", f"gcloud storage cat {checkpoint} 2>/dev/null | head -n 1",
        "echo @@log",
        f"tail -n +{seen_lines + 1} {files}.log 2>/dev/null | tail -n {LOG_LINES_PER_POLL}",
        "true",
    ])


def checkpoint_argv(model_dir: str) -> list[str]:
    """Local command printing a model dir's ``checkpoint`` state file."""
    return ["gcloud", "storage", "cat", f"{model_dir}/checkpoint"]


def _preflight_steps(options: TpuOptions, stages: list[Stage]) -> list[Step]:
    from training import preflight

    hosts = hosts_of(options.accelerator_type)
    return [Step("preflight", f"preflight {s.label}: {preflight.manifest_path(s.prefix)} vs "
                 f"the experiment ({hosts} host(s))", stage=s,
                 detail={"manifest": preflight.manifest_path(s.prefix), "hosts": hosts,
                         "pattern": shard_pattern(s.prefix)})
            for s in stages]


def _status_steps(options: TpuOptions, stages: list[Stage]) -> list[Step]:
    steps = [Step("status", f"checkpoint of {s.label}: skip it when at step "
                  f"{s.train_steps:,}", argv=checkpoint_argv(s.model_dir), stage=s)
             for s in stages]
    if 2 in options.stages and 1 not in options.stages:
        init = stages[-1].init_checkpoint
        steps.append(Step("require", f"stage 2 starts from stage 1: {init} must hold a "
                          "checkpoint", argv=checkpoint_argv(init), stage=stages[-1]))
    return steps


def _vm_steps(options: TpuOptions) -> list[Step]:
    tpu_v2 = _tpu_types()
    name = node_path(options)
    return [
        Step("create", f"create the TPU VM {options.tpu_name} ({options.accelerator_type}, "
             f"{options.runtime_version})", request=create_request(options)),
        Step("wait", f"wait until {options.tpu_name} is READY",
             request=tpu_v2.GetNodeRequest(name=name)),
    ]


def _stage_steps(options: TpuOptions, stage: Stage) -> list[Step]:
    return [
        Step("start", f"start {stage.label} on worker 0: Model Garden, {stage.train_steps:,} "
             f"steps, model dir {stage.model_dir}",
             argv=ssh_argv(options, start_command(stage), worker="0"), stage=stage),
        Step("follow", f"follow {stage.label}: log, exit code and latest checkpoint every "
             f"{options.poll_seconds:g} s", argv=ssh_argv(options, poll_command(stage, 0), "0"),
             stage=stage),
    ]


def build_plan(options: TpuOptions) -> Plan:
    """The steps of a run, from validated options; builds requests but calls nothing.

    Raises:
      ValueError: for invalid options (see :func:`validate`) or experiment settings.
    """
    validate(options)
    stages = plan_stages(options)
    steps = _preflight_steps(options, stages)
    if options.preflight_only:
        return Plan(options, steps, stages)
    steps += _status_steps(options, stages)
    package_steps, remote_install, constraints = _package_steps(options)
    steps += package_steps + _vm_steps(options)
    steps.append(Step("remote", "install Python 3.11, the package and tensorflow-tpu on every "
                      "worker", argv=ssh_argv(options, install_command(remote_install,
                                                                       constraints))))
    for stage in stages:
        steps += _stage_steps(options, stage)
    if not options.keep_vm:
        steps.append(Step("delete", f"delete the TPU VM {options.tpu_name} (also after a "
                          "failure or Ctrl-C)", request=_tpu_types().DeleteNodeRequest(
                              name=node_path(options)), always=True))
    return Plan(options, steps, stages)


# --------------------------------------------------------------------------- dry run


def describe_step(step: Step) -> str:
    """What a step does, as ``--dry-run`` prints it: the request JSON or the command."""
    lines = [step.title]
    if step.request is not None:
        method = {"create": "create_node", "wait": "get_node", "delete": "delete_node"}
        lines.append(f"TpuClient.{method[step.kind]}(request=)")
        lines.append(type(step.request).to_json(step.request))
    if step.kind == "preflight":
        lines.append(f"preflight.check(load_manifest({step.detail['manifest']!r}), config, "
                     f"num_hosts={step.detail['hosts']})")
        lines.append(f"and the files {step.detail['pattern']} matches: exactly the "
                     "manifest's shards, with its sizes")
    if step.argv is not None:
        cwd = step.detail.get("cwd")
        lines.append(("(in " + cwd + ") " if cwd else "") + shlex.join(step.argv))
    if step.kind == "follow":
        lines.append("(repeated until the exit code appears; later polls skip the lines "
                     "already shown)")
    return "\n".join(lines)


def print_plan(plan: Plan, out=None) -> None:
    """Prints every step (requests as JSON, commands as shell lines); runs nothing."""
    out = out or sys.stdout
    print(f"bertjp train tpu --dry-run: {len(plan.steps)} steps; nothing is created or run.",
          file=out)
    for index, step in enumerate(plan.steps, 1):
        print(f"\n[{index}/{len(plan.steps)}] " + describe_step(step), file=out)


# --------------------------------------------------------------------------- execution


@dataclasses.dataclass
class CommandResult:
    """Exit code and captured output of a command."""

    returncode: int
    stdout: str = ""
    stderr: str = ""


def subprocess_runner(argv: Sequence[str], cwd: str | None = None,
                      capture: bool = False) -> CommandResult:
    """Runs ``argv`` without a shell; output is captured or goes to this terminal."""
    try:
        done = subprocess.run(list(argv), cwd=cwd, text=True, check=False,
                              capture_output=capture, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise RuntimeError(f"{argv[0]} not found; install the Google Cloud CLI (gcloud) and "
                           "log in with gcloud auth login") from None
    return CommandResult(done.returncode, done.stdout or "", done.stderr or "")


@dataclasses.dataclass
class PollStatus:
    """What one poll of a stage saw on worker 0."""

    lines: int
    rc: int | None
    alive: bool
    step: int | None
    log: list[str]


def parse_poll_output(text: str) -> PollStatus:
    """Parses :func:`poll_command`'s output (``@@name`` section markers)."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@@") and line[2:] in ("lines", "rc", "alive", "checkpoint", "log"):
            current = line[2:]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)

    def first(name: str) -> str:
        """The first non-empty line of a section."""
        values = [v.strip() for v in sections.get(name, []) if v.strip()]
        return values[0] if values else ""

    count, rc, step = first("lines"), first("rc"), _CKPT_STEP.search(first("checkpoint"))
    return PollStatus(lines=int(count) if count.isdigit() else 0,
                      rc=int(rc) if re.fullmatch(r"-?[0-9]+", rc) else None,
                      alive=first("alive") == "yes", step=int(step.group(1)) if step else None,
                      log=sections.get("log", []))


class Executor:
    """Runs a :class:`Plan`: TPU API calls through ``client``, commands through ``runner``.

    Args:
      client_factory: returns a ``google.cloud.tpu_v2.TpuClient`` (or an object with its
        ``create_node``, ``get_node`` and ``delete_node``); called at the first API step.
      runner: ``runner(argv, cwd=None, capture=False) -> CommandResult``.
      sleep: ``time.sleep`` (tests pass a no-op).
      out: where progress goes.
    """

    def __init__(self, client_factory: Callable[[], Any],
                 runner: Callable[..., CommandResult] = subprocess_runner,
                 sleep: Callable[[float], None] = time.sleep, out=None):
        self._client_factory = client_factory
        self._client = None
        self.plan: Plan | None = None
        self.runner = runner
        self.sleep = sleep
        self.out = out or sys.stdout
        self.created = False
        self.done_stages: set[int] = set()
        self.problems: list[str] = []

    def say(self, message: str) -> None:
        """One progress line."""
        print(message, file=self.out, flush=True)

    @property
    def client(self):
        """The TPU API client, created at first use (so preflight-only needs none)."""
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def run(self, plan: Plan) -> int:
        """Runs the steps in order, then the ``always`` steps (also on errors and Ctrl-C).

        Returns:
          0, or 1 when ``--preflight-only`` found problems.

        Raises:
          ValueError: preflight problems (in a full run), before anything is created.
          RuntimeError: a failed command, API call or training stage.
          KeyboardInterrupt: after the cleanup steps ran.
        """
        self.plan = plan
        try:
            for step in plan.steps:
                if not step.always:
                    self._run_step(step)
            if plan.options.preflight_only:
                return 1 if self.problems else 0
        except KeyboardInterrupt:
            self.say("interrupted (Ctrl-C)")
            raise
        finally:
            for step in plan.steps:
                if step.always:
                    self._cleanup(step)
        return 0

    def _run_step(self, step: Step) -> None:
        if step.kind != "preflight" and self.problems:
            raise ValueError(f"preflight found {len(self.problems)} problem(s): "
                             + " | ".join(self.problems))
        if step.kind in ("local", "create", "wait", "remote") and not self._pending():
            self.say(f"skip: {step.title} (every stage is complete)")
            return
        if step.kind in ("start", "follow") and step.stage.number in self.done_stages:
            self.say(f"skip: {step.title} (complete)")
            return
        self.say(f"-- {step.title}")
        getattr(self, f"_do_{step.kind}")(step)

    def _pending(self) -> bool:
        return any(s.number not in self.done_stages for s in self.plan.stages)

    def _cleanup(self, step: Step) -> None:
        if not self.created:
            return
        self.say(f"-- {step.title}")
        try:
            self._do_delete(step)
        except BaseException as err:  # noqa: BLE001 - report, keep the original error
            o = self.plan.options
            self.say(f"could not delete the TPU VM ({type(err).__name__}: {err}); delete it "
                     f"yourself: gcloud compute tpus tpu-vm delete {o.tpu_name} --zone "
                     f"{o.zone} --project {o.project} --quiet")
            if isinstance(err, KeyboardInterrupt):
                raise

    # -- step handlers

    def _do_preflight(self, step: Step) -> None:
        from training import preflight

        manifest = preflight.load_manifest(step.detail["manifest"])
        self.say(f"   records: {preflight.describe(manifest)}")
        problems = preflight.check(manifest, step.stage.config, num_hosts=step.detail["hosts"],
                                   vocab_dir=self.plan.options.vocab)
        problems += _subword_problem(manifest, self.plan.options.subword)
        flag = STAGE_DEFS[step.stage.number].flag
        problems += preflight.file_problems(
            [(step.detail["manifest"], manifest, [step.detail["pattern"]])], flag)
        for problem in problems:
            self.say(f"   problem: {problem}")
        self.say(f"   {step.stage.label}: " + ("OK" if not problems else
                                                 f"{len(problems)} problem(s)"))
        self.problems += [f"{step.stage.label}: {p}" for p in problems]

    def _checkpoint_step(self, argv: list[str]) -> int | None:
        result = self.runner(argv, capture=True)
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
            self.say(f"   no checkpoint read from {argv[-1]} ({reason[:200]})")
            return None
        match = _CKPT_STEP.search(result.stdout)
        return int(match.group(1)) if match else None

    def _do_status(self, step: Step) -> None:
        stage = step.stage
        found = self._checkpoint_step(step.argv)
        if found is not None and found >= stage.train_steps:
            self.done_stages.add(stage.number)
            self.say(f"   {stage.label}: checkpoint at step {found:,} >= {stage.train_steps:,}:"
                     " complete, skipped")
        else:
            self.say(f"   {stage.label}: " + (f"resumes from step {found:,}" if found else
                                               "starts from step 0"))

    def _do_require(self, step: Step) -> None:
        if step.stage.number in self.done_stages:
            return
        if self._checkpoint_step(step.argv) is None:
            raise ValueError(f"stage 2 starts from stage 1's weights but "
                             f"{step.stage.init_checkpoint} holds no checkpoint; run stage 1 "
                             "first (--stages 1,2)")

    def _do_local(self, step: Step) -> None:
        if step.detail.get("mkdir"):
            os.makedirs(step.detail["mkdir"], exist_ok=True)
        result = self.runner(step.argv, cwd=step.detail.get("cwd"))
        if result.returncode != 0:
            raise RuntimeError(f"{step.title} failed with exit code {result.returncode}: "
                               f"{shlex.join(step.argv)}")

    def _do_remote(self, step: Step) -> None:
        result = self.runner(step.argv)
        if result.returncode != 0:
            raise RuntimeError(f"{step.title} failed with exit code {result.returncode} "
                               "(its output is above)")

    def _do_create(self, step: Step) -> None:
        from google.api_core import exceptions

        self.created = True  # from here on the VM may exist: the cleanup deletes it
        try:
            node = self.client.create_node(request=step.request).result(
                timeout=CREATE_TIMEOUT_S)
        except exceptions.AlreadyExists:
            self.created = False  # not ours: never delete it
            o = self.plan.options
            raise RuntimeError(f"a TPU VM named {o.tpu_name} already exists in {o.zone}; "
                               "delete it or choose another --tpu-name") from None
        self.say(f"   created {getattr(node, 'name', '') or step.request.node_id}")

    def _do_wait(self, step: Step) -> None:
        from google.cloud import tpu_v2

        waited = 0.0
        while True:
            node = self.client.get_node(request=step.request)
            state = tpu_v2.Node.State(node.state)
            if state == tpu_v2.Node.State.READY:
                self.say(f"   {step.request.name}: READY")
                return
            if state not in (tpu_v2.Node.State.CREATING, tpu_v2.Node.State.STARTING,
                             tpu_v2.Node.State.RESTARTING, tpu_v2.Node.State.STATE_UNSPECIFIED):
                raise RuntimeError(f"TPU VM {step.request.name} is {state.name}, not READY")
            if waited >= READY_TIMEOUT_S:
                raise RuntimeError(f"TPU VM {step.request.name} not READY after {waited:.0f} s")
            self.sleep(READY_POLL_S)
            waited += READY_POLL_S

    def _do_start(self, step: Step) -> None:
        self._do_remote(step)

    def _do_follow(self, step: Step) -> None:
        stage, seen, last_step, failures = step.stage, 0, None, 0
        while True:
            result = self.runner(ssh_argv(self.plan.options, poll_command(stage, seen), "0"),
                                 capture=True)
            if result.returncode != 0:
                failures += 1
                self._check_node(stage, failures, result.stderr)
                self.sleep(self.plan.options.poll_seconds)
                continue
            failures, status = 0, parse_poll_output(result.stdout)
            for line in status.log:
                self.say(f"[{stage.data}] {line}")
            seen = max(seen, status.lines)
            if status.step is not None and status.step != last_step:
                last_step = status.step
                self.say(f"[{stage.data}] latest checkpoint: step {last_step:,} of "
                         f"{stage.train_steps:,}")
            if self._finished(stage, status):
                return
            self.sleep(self.plan.options.poll_seconds)

    def _finished(self, stage: Stage, status: PollStatus) -> bool:
        if status.rc == 0:
            self.done_stages.add(stage.number)
            self.say(f"{stage.label} finished; checkpoints in {stage.model_dir}")
            return True
        if status.rc is not None:
            raise RuntimeError(f"{stage.label} failed: Model Garden exited with {status.rc} "
                               f"(log on the VM: ~/{stage.files}.log; its last lines are above)")
        if not status.alive:
            raise RuntimeError(f"{stage.label}: the trainer on the VM is gone without an exit "
                               "code (VM restarted?); run the same command again to resume "
                               "from the latest checkpoint")
        return False

    def _check_node(self, stage: Stage, failures: int, stderr: str) -> None:
        from google.cloud import tpu_v2

        name = node_path(self.plan.options)
        state = tpu_v2.Node.State(self.client.get_node(
            request=tpu_v2.GetNodeRequest(name=name)).state)
        if state != tpu_v2.Node.State.READY:
            raise RuntimeError(f"TPU VM is {state.name} during {stage.label}; run the same "
                               "command again to resume from the latest checkpoint")
        if failures >= SSH_FAILURES_ALLOWED:
            raise RuntimeError(f"{failures} SSH polls of {stage.label} failed in a row: "
                               f"{stderr.strip()[-300:]}")

    def _do_delete(self, step: Step) -> None:
        from google.api_core import exceptions

        try:
            self.client.delete_node(request=step.request).result(timeout=CREATE_TIMEOUT_S)
        except exceptions.NotFound:
            self.say(f"   {step.request.name} does not exist (nothing to delete)")
        else:
            self.say(f"   deleted {step.request.name}")
        self.created = False


def _subword_problem(manifest: dict, subword: str) -> list[str]:
    have = manifest.get("config", {}).get("subword")
    if not have or have == subword:
        return []
    return [f"subword: the records were made with a {have!r} vocabulary, --subword is "
            f"{subword!r}; pass --subword {have} (and its --vocab)"]


# --------------------------------------------------------------------------- command line

EPILOG = """\
Example (BERT-base, WordPiece, both stages on a spot v3-8):
  bertjp train tpu --project my-project --zone europe-west4-a --spot \\
      --cc100-data gs://my-bucket/data/cc100 --wikipedia-data gs://my-bucket/data/wiki \\
      --vocab gs://my-bucket/vocab/wordpiece --model-dir gs://my-bucket/models/base-wp
  ... --dry-run          # print every API request and remote command, touch nothing
  ... --preflight-only   # check both manifests against the experiments and exit

How it runs: the TPU VM is created with the Cloud TPU API (google-cloud-tpu, with your
Application Default Credentials: gcloud auth application-default login); commands on
the VM go over `gcloud compute tpus tpu-vm ssh --worker=...` with your gcloud login.
Training runs detached on worker 0 (nohup), so a dropped SSH poll does not stop it.
The VM is deleted at the end, after a failure and on Ctrl-C, unless --keep-vm (with
--keep-vm, Ctrl-C stops only the following; training goes on until it ends).

Runtime: TPU images with TensorFlow stop at tpu-vm-tf-2.16.1-pjrt (Python 3.10), while
this package pins TensorFlow 2.20 + tf-models-official 2.20 on Python 3.11. So the default
is the plain base image of the TPU generation (tpu-ubuntu2204-base for v2-v4), and the
install step adds python3.11, the package with its [train] extra and tensorflow-tpu 2.20
(it replaces the plain tensorflow wheel; libtpu comes from PyPI).

Resuming: Model Garden resumes from the latest checkpoint in a stage's model dir, so
running the same command again continues; a stage whose checkpoint is already at its
train steps is skipped. Stage dirs: MODEL_DIR/stage1-cc100, MODEL_DIR/stage2-wikipedia
(stage 2 starts from stage 1's weights: task.init_checkpoint = MODEL_DIR/stage1-cc100).
Multi-host slices (v3-32, ...) are planned (preflight counts their hosts; training starts
on worker 0) but have not been tried on a real pod."""


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bertjp train tpu``."""
    p = argparse.ArgumentParser(
        prog="bertjp train tpu", allow_abbrev=False, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Pretrain a BERT on a Cloud TPU VM with TF Model Garden: create the VM, "
        "install this package, run stage 1 (CC-100, seq 128) then stage 2 (Wikipedia, seq "
        "512, from stage 1's weights), follow the progress, delete the VM.")
    _add_cloud_options(p)
    _add_training_options(p)
    _add_run_options(p)
    return p


def _add_cloud_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Cloud TPU VM")
    g.add_argument("--project", required=True, help="Google Cloud project id")
    g.add_argument("--zone", required=True, help="zone with TPU quota, e.g. europe-west4-a")
    g.add_argument("--tpu-name", default="",
                   help="TPU VM name (default: bertjp-<last part of --model-dir>)")
    g.add_argument("--accelerator-type", default=DEFAULT_ACCELERATOR,
                   help=f"TPU type (default: {DEFAULT_ACCELERATOR}); v3-32 etc. have 4+ hosts")
    g.add_argument("--runtime-version", default="",
                   help="TPU software version (default: the generation's base image, "
                   "tpu-ubuntu2204-base for v2-v4; see 'Runtime' below)")
    kind = g.add_mutually_exclusive_group()
    kind.add_argument("--spot", action="store_true", help="a Spot VM (cheaper, can be "
                      "preempted; rerun the command to resume)")
    kind.add_argument("--preemptible", action="store_true", help="a preemptible VM (older "
                      "form of --spot)")
    g.add_argument("--network", default="", help="VPC network (default: the API's 'default')")
    g.add_argument("--subnetwork", default="", help="subnetwork (default: the API's default)")
    g.add_argument("--no-external-ip", action="store_true",
                   help="no external IP (the network needs Cloud NAT or Private Google Access "
                   "for pip and Cloud Storage; SSH goes through IAP)")
    g.add_argument("--service-account", default="", metavar="EMAIL",
                   help="service account of the VM (default: the Compute Engine default); "
                   "it needs read/write access to the buckets")


def _add_training_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--cc100-data", default="", metavar="PREFIX",
                   help="stage 1 records: gs://... --output of bertjp pretraining-data (seq "
                   "128); shards PREFIX-*-of-*.tfrecord.gz, manifest PREFIX.manifest.json")
    g.add_argument("--wikipedia-data", default="", metavar="PREFIX",
                   help="stage 2 records (seq 512), same layout")
    g.add_argument("--vocab", required=True, metavar="DIR",
                   help="vocabulary directory (vocab.txt), gs:// or local: sets the vocab size "
                   "and is checked against the manifests' checksum")
    g.add_argument("--vocab-size", type=int, default=0, metavar="N",
                   help="vocab size without reading --vocab (in --dry-run with a gs:// vocab "
                   "the default is the released v3 size of --subword: 32768 or 7027)")
    g.add_argument("--size", default="base",
                   help="model size: base, large, tiny, mini, small, medium or L{layers}_H{hidden}"
                   " (default: base)")
    g.add_argument("--subword", choices=("wordpiece", "character"), default="wordpiece",
                   help="subword type of the vocabulary (default: wordpiece)")
    g.add_argument("--model-dir", required=True, metavar="gs://BUCKET/models/NAME",
                   help="stage dirs go under it: stage1-cc100, stage2-wikipedia")
    g.add_argument("--stages", action="append", metavar="1|2|1,2",
                   help="stages to run: 1, 2 or 1,2 (default); repeated, they add up")
    g.add_argument("--train-steps", action="append", metavar="N[,N2]",
                   help="steps per stage: one number for every stage, or two for stage 1 and "
                   "stage 2, also as --train-steps N --train-steps N2 (default: 1000000 "
                   "each, as the recipe)")
    g.add_argument("--warmup-steps", type=int, default=10_000, metavar="N",
                   help="linear warmup steps of each stage, at most 10%% of its train steps "
                   "(default: 10000)")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--package", default="", metavar="SPEC",
                   help="what to pip install on the VM. Default: an sdist of this checkout, "
                   "built here and copied to MODEL_DIR/_launcher/ (with constraints.txt). "
                   "A local .tar.gz/.whl or a gs:// file is copied and installed with its "
                   "[train] extra; anything else goes to pip as is, e.g. "
                   "'bertjp[train] @ git+https://github.com/ORG/REPO@TAG'")
    g.add_argument("--dry-run", action="store_true",
                   help="print every API request and remote command in order; touch nothing")
    g.add_argument("--preflight-only", action="store_true",
                   help="read the manifests, check them against the experiments for this TPU's "
                   "host count, print the result and exit (0: fine, 1: problems)")
    g.add_argument("--keep-vm", action="store_true",
                   help="do not delete the TPU VM at the end, on failure or on Ctrl-C")
    g.add_argument("--poll-seconds", type=float, default=300.0, metavar="S",
                   help="seconds between progress polls (default: 300)")
    g.add_argument("--verbose", action="store_true", help="tracebacks on errors")


def _joined(values: list[str] | None, default: str) -> str:
    """The values of a repeatable comma-list flag as one comma-separated text."""
    return ",".join(values) if values else default


def _parse_stages(text: str) -> tuple[int, ...]:
    try:
        stages = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        stages = [0]
    if not stages or any(s not in STAGE_DEFS for s in stages):
        raise ValueError(f"--stages {text!r} must be 1, 2 or 1,2")
    return tuple(stages)


def _parse_train_steps(text: str) -> dict[int, int]:
    if not text:
        return {}
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) < 1:
        raise ValueError(f"--train-steps {text!r} must be N (every stage) or N1,N2 (stage 1, "
                         "stage 2), positive")
    return {1: values[0], 2: values[-1]}


def _vocab_size(args: argparse.Namespace) -> int:
    from training import configs

    if args.vocab_size:
        return args.vocab_size
    if args.dry_run and args.vocab.startswith("gs://"):
        return configs.SUBWORD_VOCAB_SIZES[args.subword]
    return configs.vocab_size_of(args.vocab)


def options_from_args(args: argparse.Namespace) -> TpuOptions:
    """Validated :class:`TpuOptions` of parsed arguments (reads --vocab for its size).

    Raises:
      ValueError: for invalid values, naming the flag.
    """
    from training import configs

    configs.model_size(args.size)
    accelerator = args.accelerator_type
    hosts_of(accelerator)
    options = TpuOptions(
        project=args.project, zone=args.zone, model_dir=args.model_dir, vocab=args.vocab,
        vocab_size=_vocab_size(args), data={1: args.cc100_data, 2: args.wikipedia_data},
        stages=_parse_stages(_joined(args.stages, "1,2")), size=args.size,
        subword=args.subword, train_steps=_parse_train_steps(_joined(args.train_steps, "")),
        warmup_steps=args.warmup_steps,
        tpu_name=args.tpu_name or default_tpu_name(args.model_dir),
        accelerator_type=accelerator,
        runtime_version=args.runtime_version or default_runtime_version(accelerator),
        spot=args.spot, preemptible=args.preemptible, network=args.network,
        subnetwork=args.subnetwork, external_ips=not args.no_external_ip,
        service_account=args.service_account, package=args.package, keep_vm=args.keep_vm,
        preflight_only=args.preflight_only, poll_seconds=args.poll_seconds)
    validate(options)
    return options


def _real_client():
    from google.cloud import tpu_v2

    return tpu_v2.TpuClient()  # Application Default Credentials


def warmup_warnings(plan: Plan) -> list[str]:
    """A line for each stage whose ``--warmup-steps`` is clipped to a share of its steps."""
    from training import configs

    lines = []
    for stage in plan.stages:
        warning = configs.warmup_warning(stage.train_steps, plan.options.warmup_steps,
                                         "--train-steps")
        if warning:
            lines.append(f"warning: {stage.label}: {warning}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """``bertjp train tpu ...``; returns the exit code."""
    args = make_parser().parse_args(argv)
    options = options_from_args(args)
    plan = build_plan(options)
    for line in warmup_warnings(plan):
        print(line, file=sys.stderr, flush=True)
    if args.dry_run:
        if not args.vocab_size and args.vocab.startswith("gs://"):
            print(f"(vocab size {options.vocab_size} assumed for --subword {options.subword}; "
                  "a real run counts the lines of --vocab, --vocab-size sets it)")
        print_plan(plan)
        return 0
    return Executor(_real_client).run(plan)
