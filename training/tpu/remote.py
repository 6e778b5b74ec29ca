"""The commands ``bertjp train tpu`` runs: over SSH on the TPU VM, and ``gcloud storage``.

Every value put into a remote script is quoted with :func:`shlex.quote` (or
:func:`shlex.join`); :func:`parse_poll_output` reads what :func:`poll_command` prints.
"""

from __future__ import annotations

import dataclasses
import re
import shlex

from training.tpu.options import TpuOptions
from training.tpu.steps import WORKDIR, Stage

__all__ = [
    "PYTHON",
    "TENSORFLOW_TPU",
    "VENV",
    "PollStatus",
    "checkpoint_argv",
    "checkpoint_step",
    "install_command",
    "parse_poll_output",
    "pip_command",
    "poll_command",
    "ssh_argv",
    "start_command",
    "train_argv",
]

TENSORFLOW_TPU = "tensorflow-tpu==2.20.0"
PYTHON = "python3.11"
VENV = "bertjp-venv"  # on each worker, under the login's home directory
LOG_LINES_PER_POLL = 20
_CKPT_STEP = re.compile(r"ckpt-([0-9]+)")
_SECTIONS = ("lines", "rc", "alive", "checkpoint", "log")


def ssh_argv(options: TpuOptions, command: str, worker: str = "all") -> list[str]:
    """``gcloud compute tpus tpu-vm ssh`` running ``command`` on ``worker`` (all, 0, ...)."""
    argv = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", options.tpu_name,
            "--zone", options.zone, "--project", options.project, f"--worker={worker}",
            "--quiet"]
    if not options.external_ips:
        argv.append("--tunnel-through-iap")
    return argv + ["--command", command]


def pip_command(*args: str) -> str:
    """``pip install -q ARGS`` with the workers' venv, as one shell line."""
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
        pip_command(TENSORFLOW_TPU, *constraints),
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


def checkpoint_step(text: str) -> int | None:
    """The step of the first ``ckpt-N`` in a ``checkpoint`` state file's text."""
    match = _CKPT_STEP.search(text)
    return int(match.group(1)) if match else None


@dataclasses.dataclass
class PollStatus:
    """What one poll of a stage saw on worker 0."""

    lines: int
    rc: int | None
    alive: bool
    step: int | None
    log: list[str]


def _sections(text: str) -> dict[str, list[str]]:
    """The lines under each ``@@name`` marker of :func:`poll_command`'s output."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@@") and line[2:] in _SECTIONS:
            current = line[2:]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def parse_poll_output(text: str) -> PollStatus:
    """Parses :func:`poll_command`'s output (``@@name`` section markers)."""
    sections = _sections(text)

    def first(name: str) -> str:
        """The first non-empty line of a section."""
        values = [v.strip() for v in sections.get(name, []) if v.strip()]
        return values[0] if values else ""

    count, rc = first("lines"), first("rc")
    return PollStatus(lines=int(count) if count.isdigit() else 0,
                      rc=int(rc) if re.fullmatch(r"-?[0-9]+", rc) else None,
                      alive=first("alive") == "yes", step=checkpoint_step(first("checkpoint")),
                      log=sections.get("log", []))
