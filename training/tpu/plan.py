"""The plan of a ``bertjp train tpu`` run: :func:`build_plan`, a pure function of the
options, and :func:`print_plan`, the ``--dry-run`` output.

Building a plan makes the TPU API requests, the Model Garden configs and the commands,
and calls nothing; :class:`~training.tpu.executor.Executor` runs it.
"""

from __future__ import annotations

import os
import pathlib
import shlex
import sys
import tempfile
from typing import TextIO

from training.tpu import remote
from training.tpu.options import DEFAULT_TRAIN_STEPS, STAGE_DEFS, TpuOptions, hosts_of, validate
from training.tpu.steps import (
    WORKDIR,
    BuildPackage,
    CheckpointStatus,
    CopyPackage,
    CreateNode,
    DeleteNode,
    InitCheckpoint,
    Install,
    Plan,
    Poll,
    Preflight,
    RequireCheckpoint,
    RunStage,
    Stage,
    Step,
    WaitReady,
)

__all__ = [
    "CLOUD_PLATFORM",
    "INIT_DIR",
    "LAUNCHER_DIR",
    "build_plan",
    "create_request",
    "node_path",
    "plan_stages",
    "print_plan",
    "shard_pattern",
]

LAUNCHER_DIR = "_launcher"  # under --model-dir: the uploaded package
INIT_DIR = "init"  # under --model-dir: the --init-from checkpoint, staged
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def _tpu_types():
    """``google.cloud.tpu_v2``, imported when a plan is built."""
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
    """(Model Garden config, train steps) of a stage, for this TPU."""
    from training import configs

    pattern = shard_pattern(options.data[number])
    steps = options.train_steps.get(number, DEFAULT_TRAIN_STEPS)
    extra = {}
    if options.learning_rate is not None:
        extra["learning_rate"] = options.learning_rate
    if options.max_position_embeddings is not None:
        extra["max_position_embeddings"] = options.max_position_embeddings
    config = configs.experiment_config(
        options.size, options.vocab_size, STAGE_DEFS[number].data, pattern,
        train_steps=steps, warmup_steps=options.warmup_steps, init_checkpoint=init, **extra)
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
        if options.init is not None:
            init = f"{root}/{INIT_DIR}"  # the staged --init-from checkpoint
        config, steps = _stage_config(options, number, init)
        stages.append(Stage(number, STAGE_DEFS[number].data, options.data[number], model_dir,
                            steps, init, config, configs.to_yaml(config)))
    return stages


# --------------------------------------------------------------------------- the package


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


def _constraints(options: TpuOptions) -> list[str]:
    """The checkout's ``constraints.txt``, when it has one."""
    path = pathlib.Path(options.source_dir) / "constraints.txt"
    return [str(path)] if path.is_file() else []


def _build_step(options: TpuOptions, source_dir: str) -> tuple[BuildPackage, list[str]]:
    """The sdist build of ``source_dir`` and the files to upload (sdist, constraints)."""
    from bertjp.version import __version__

    dist = os.path.join(tempfile.gettempdir(), f"bertjp-tpu-{options.tpu_name}")
    step = BuildPackage(
        title="build the package's sdist here", cwd=source_dir, mkdir=dist,
        argv=[sys.executable, "setup.py", "-q", "egg_info", "--egg-base", dist, "sdist",
              "--dist-dir", dist])
    return step, [os.path.join(dist, f"bertjp-{__version__}.tar.gz"), *_constraints(options)]


def _package_steps(options: TpuOptions) -> tuple[list[Step], list[str], list[str]]:
    """Local steps that stage the package, the remote commands that install it, and
    the pip constraint arguments (``-c FILE``) for the later installs."""
    kind, value = _package_source(options)
    if kind == "pip":
        return [], [remote.pip_command(value)], []
    launcher = f"{options.model_dir.rstrip('/')}/{LAUNCHER_DIR}"
    steps: list[Step] = []
    uploads = [value]
    if kind == "build":
        build, uploads = _build_step(options, value)
        steps.append(build)
    if kind != "gs":
        steps.append(CopyPackage(title=f"copy the package to {launcher}/",
                                 argv=["gcloud", "storage", "cp", *uploads, launcher + "/"]))
        uploads = [f"{launcher}/{os.path.basename(u)}" for u in uploads]
    on_vm = [f"{WORKDIR}/{os.path.basename(u)}" for u in uploads]
    constraints = ["-c", on_vm[1]] if len(on_vm) > 1 else []
    commands = [f"mkdir -p {WORKDIR}",
                shlex.join(["gcloud", "storage", "cp", *uploads, WORKDIR + "/"]),
                remote.pip_command(f"./{on_vm[0]}[train]", *constraints)]
    return steps, commands, constraints


# --------------------------------------------------------------------------- the steps


def _preflight_steps(options: TpuOptions, stages: list[Stage]) -> list[Step]:
    """A preflight of each stage's manifest and files."""
    from training import preflight

    hosts = hosts_of(options.accelerator_type)
    return [Preflight(title=f"preflight {s.label}: {preflight.manifest_path(s.prefix)} vs "
                      f"the experiment ({hosts} host(s))", stage=s,
                      manifest=preflight.manifest_path(s.prefix), hosts=hosts,
                      pattern=shard_pattern(s.prefix))
            for s in stages]


def _status_steps(options: TpuOptions, stages: list[Stage]) -> list[Step]:
    """A checkpoint read of each stage; stage 2 alone also requires stage 1's."""
    steps: list[Step] = [
        CheckpointStatus(title=f"checkpoint of {s.label}: skip it when at step "
                         f"{s.train_steps:,}", argv=remote.checkpoint_argv(s.model_dir), stage=s)
        for s in stages]
    if 2 in options.stages and 1 not in options.stages and options.init is None:
        init = stages[-1].init_checkpoint
        steps.append(RequireCheckpoint(
            title=f"stage 2 starts from stage 1: {init} must hold a checkpoint",
            argv=remote.checkpoint_argv(init), stage=stages[-1]))
    return steps


def _init_steps(options: TpuOptions) -> list[Step]:
    """``--init-from``: stage the model's checkpoint to MODEL_DIR/init/."""
    init = options.init
    if init is None:
        return []
    target = f"{options.model_dir.rstrip('/')}/{INIT_DIR}"
    local = os.path.join(tempfile.gettempdir(), f"bertjp-init-{options.tpu_name}")
    prefix = init.checkpoint or f"{local}/import/CHECKPOINT"
    what = "import " + init.path + " and stage it" if init.kind == "transformers" else (
        f"stage {init.checkpoint}")
    return [InitCheckpoint(
        title=f"--init-from: {what} to {target}/ (weights only, training starts at step 0)",
        argv=["gcloud", "storage", "cp", f"{prefix}.*", f"{local}/checkpoint", target + "/"],
        source=init.path, source_kind=init.kind, checkpoint=init.checkpoint, local_dir=local,
        target=target)]


def _vm_steps(options: TpuOptions) -> list[Step]:
    """Create the TPU VM and wait until it is READY."""
    return [
        CreateNode(title=f"create the TPU VM {options.tpu_name} ({options.accelerator_type}, "
                   f"{options.runtime_version})", request=create_request(options)),
        WaitReady(title=f"wait until {options.tpu_name} is READY",
                  request=_tpu_types().GetNodeRequest(name=node_path(options))),
    ]


def _stage_steps(options: TpuOptions, stage: Stage) -> list[Step]:
    """Start a stage on worker 0, then follow it."""
    return [
        RunStage(title=f"start {stage.label} on worker 0: Model Garden, "
                 f"{stage.train_steps:,} steps, model dir {stage.model_dir}",
                 argv=remote.ssh_argv(options, remote.start_command(stage), worker="0"),
                 stage=stage),
        Poll(title=f"follow {stage.label}: log, exit code and latest checkpoint every "
             f"{options.poll_seconds:g} s",
             argv=remote.ssh_argv(options, remote.poll_command(stage, 0), "0"), stage=stage),
    ]


def build_plan(options: TpuOptions) -> Plan:
    """The steps of a run, from validated options; builds requests but calls nothing.

    Raises:
      ValueError: for invalid options (see :func:`~training.tpu.options.validate`) or
        experiment settings.
    """
    validate(options)
    stages = plan_stages(options)
    steps = _preflight_steps(options, stages)
    if options.preflight_only:
        return Plan(options, steps, stages)
    steps += _status_steps(options, stages)
    steps += _init_steps(options)
    package_steps, install, constraints = _package_steps(options)
    steps += package_steps + _vm_steps(options)
    steps.append(Install(
        title="install Python 3.11, the package and tensorflow-tpu on every worker",
        argv=remote.ssh_argv(options, remote.install_command(install, constraints))))
    for stage in stages:
        steps += _stage_steps(options, stage)
    if not options.keep_vm:
        steps.append(DeleteNode(
            title=f"delete the TPU VM {options.tpu_name} (also after a failure or Ctrl-C)",
            request=_tpu_types().DeleteNodeRequest(name=node_path(options))))
    return Plan(options, steps, stages)


def print_plan(plan: Plan, out: TextIO | None = None) -> None:
    """Prints every step (requests as JSON, commands as shell lines); runs nothing."""
    out = out or sys.stdout
    print(f"bertjp train tpu --dry-run: {len(plan.steps)} steps; nothing is created or run.",
          file=out)
    for index, step in enumerate(plan.steps, 1):
        print(f"\n[{index}/{len(plan.steps)}] " + step.describe(), file=out)
