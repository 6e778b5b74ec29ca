"""Runs a ``bertjp train tpu`` plan: :class:`Executor`, with the TPU API client and the
command runner injected (tests pass fakes of the cloud boundary only).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import sys
import time
from typing import Any, Callable, Sequence, TextIO

from bertjp.manifest import Manifest
from training.tpu import remote, steps
from training.tpu.options import STAGE_DEFS
from training.tpu.plan import node_path
from training.tpu.steps import Plan, Stage, Step

__all__ = ["CommandResult", "Executor", "subprocess_runner"]

SSH_FAILURES_ALLOWED = 5
CREATE_TIMEOUT_S = 1800
READY_TIMEOUT_S = 1800
READY_POLL_S = 30
# Skipped when every stage is complete, and when their stage is:
_SETUP_STEPS = (steps.InitCheckpoint, steps.BuildPackage, steps.CopyPackage, steps.CreateNode,
                steps.WaitReady, steps.Install)
_STAGE_STEPS = (steps.RunStage, steps.Poll)


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


def _subword_problem(manifest: Manifest, subword: str) -> list[str]:
    """A problem when the records were made with another kind of vocabulary."""
    have = manifest.config.get("subword")
    if not have or have == subword:
        return []
    return [f"subword: the records were made with a {have!r} vocabulary, --subword is "
            f"{subword!r}; pass --subword {have} (and its --vocab)"]


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
                 sleep: Callable[[float], None] = time.sleep, out: TextIO | None = None):
        self._client_factory = client_factory
        self._client = None
        self.plan: Plan | None = None
        self.runner = runner
        self.sleep = sleep
        self.out = out or sys.stdout
        self.created = False
        self.done_stages: set[int] = set()
        self.problems: list[str] = []
        self._handlers: dict[type[Step], Callable[[Any], None]] = {
            steps.Preflight: self._do_preflight, steps.CheckpointStatus: self._do_status,
            steps.RequireCheckpoint: self._do_require, steps.BuildPackage: self._do_build,
            steps.CopyPackage: self._do_local, steps.CreateNode: self._do_create,
            steps.WaitReady: self._do_wait, steps.Install: self._do_remote,
            steps.RunStage: self._do_remote, steps.Poll: self._do_follow,
            steps.DeleteNode: self._do_delete, steps.InitCheckpoint: self._do_init}

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
        """Runs one step, or says why it is skipped."""
        if not isinstance(step, steps.Preflight) and self.problems:
            raise ValueError(f"preflight found {len(self.problems)} problem(s): "
                             + " | ".join(self.problems))
        if isinstance(step, _SETUP_STEPS) and not self._pending():
            self.say(f"skip: {step.title} (every stage is complete)")
            return
        if isinstance(step, _STAGE_STEPS) and step.stage.number in self.done_stages:
            self.say(f"skip: {step.title} (complete)")
            return
        self.say(f"-- {step.title}")
        self._handlers[type(step)](step)

    def _pending(self) -> bool:
        """Whether a stage of the plan is still to train."""
        return any(s.number not in self.done_stages for s in self.plan.stages)

    def _cleanup(self, step: steps.DeleteNode) -> None:
        """Deletes the VM this run created; failing that, says how to delete it."""
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

    def _do_preflight(self, step: steps.Preflight) -> None:
        """Checks the manifest and the files; problems stop a full run before the VM."""
        from training import preflight

        manifest = preflight.load_manifest(step.manifest)
        self.say(f"   records: {preflight.describe(manifest)}")
        problems = preflight.check(manifest, step.stage.config, num_hosts=step.hosts,
                                   vocab_dir=self.plan.options.vocab)
        problems += _subword_problem(manifest, self.plan.options.subword)
        init = self.plan.options.init
        if init is not None:
            problems += preflight.init_problems(
                manifest, init_dir=init.path, vocab_size=init.vocab_size,
                max_position_embeddings=init.max_position_embeddings, vocab_dir=init.vocab_dir)
        flag = STAGE_DEFS[step.stage.number].flag
        problems += preflight.file_problems([(step.manifest, manifest, [step.pattern])], flag)
        for problem in problems:
            self.say(f"   problem: {problem}")
        self.say(f"   {step.stage.label}: " + ("OK" if not problems else
                                                 f"{len(problems)} problem(s)"))
        self.problems += [f"{step.stage.label}: {p}" for p in problems]

    def _checkpoint_step(self, argv: list[str]) -> int | None:
        """The step of the checkpoint ``argv`` prints, None when there is none."""
        result = self.runner(argv, capture=True)
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
            self.say(f"   no checkpoint read from {argv[-1]} ({reason[:200]})")
            return None
        return remote.checkpoint_step(result.stdout)

    def _do_status(self, step: steps.CheckpointStatus) -> None:
        """Marks a stage complete when its checkpoint is at its train steps."""
        stage = step.stage
        found = self._checkpoint_step(step.argv)
        if found is not None and found >= stage.train_steps:
            self.done_stages.add(stage.number)
            self.say(f"   {stage.label}: checkpoint at step {found:,} >= {stage.train_steps:,}:"
                     " complete, skipped")
        else:
            self.say(f"   {stage.label}: " + (f"resumes from step {found:,}" if found else
                                               "starts from step 0"))

    def _do_require(self, step: steps.RequireCheckpoint) -> None:
        """Refuses stage 2 alone without stage 1's checkpoint."""
        if step.stage.number in self.done_stages:
            return
        if self._checkpoint_step(step.argv) is None:
            raise ValueError(f"stage 2 starts from stage 1's weights but "
                             f"{step.stage.init_checkpoint} holds no checkpoint; run stage 1 "
                             "first (--stages 1,2)")

    def _do_build(self, step: steps.BuildPackage) -> None:
        """Builds the sdist into its (new) directory."""
        os.makedirs(step.mkdir, exist_ok=True)
        self._do_local(step, cwd=step.cwd)

    def _do_init(self, step: steps.InitCheckpoint) -> None:
        """Imports a transformers directory (when it is one), writes a ``checkpoint``
        state file naming the checkpoint and copies both to ``MODEL_DIR/init/``."""
        import tensorflow as tf

        os.makedirs(step.local_dir, exist_ok=True)
        prefix = step.checkpoint
        if step.source_kind == "transformers":
            from training.importer import import_model  # imported when used

            prefix = str(import_model(step.source, os.path.join(step.local_dir, "import"),
                                      overwrite=True, log=self.say).checkpoint)
        files = sorted(tf.io.gfile.glob(prefix + ".*"))
        if not files:
            raise RuntimeError(f"no checkpoint files {prefix}.* to stage")
        name = os.path.basename(prefix)
        state = os.path.join(step.local_dir, "checkpoint")
        with open(state, "w", encoding="utf-8") as f:
            f.write(f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')
        argv = ["gcloud", "storage", "cp", *files, state, step.target + "/"]
        result = self.runner(argv)
        if result.returncode != 0:
            raise RuntimeError(f"{step.title} failed with exit code {result.returncode}: "
                               f"{shlex.join(argv)}")

    def _do_local(self, step: steps.BuildPackage | steps.CopyPackage,
                  cwd: str | None = None) -> None:
        """Runs a command here."""
        result = self.runner(step.argv, cwd=cwd)
        if result.returncode != 0:
            raise RuntimeError(f"{step.title} failed with exit code {result.returncode}: "
                               f"{shlex.join(step.argv)}")

    def _do_remote(self, step: steps.Install | steps.RunStage) -> None:
        """Runs a command on the VM over SSH."""
        result = self.runner(step.argv)
        if result.returncode != 0:
            raise RuntimeError(f"{step.title} failed with exit code {result.returncode} "
                               "(its output is above)")

    def _do_create(self, step: steps.CreateNode) -> None:
        """Creates the VM; one of the same name that exists already is never ours."""
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

    def _do_wait(self, step: steps.WaitReady) -> None:
        """Polls the VM's state until READY."""
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

    def _do_follow(self, step: steps.Poll) -> None:
        """Polls a stage, showing new log lines and checkpoints, until it ends."""
        stage, seen, last_step, failures = step.stage, 0, None, 0
        options = self.plan.options
        while True:
            result = self.runner(remote.ssh_argv(options, remote.poll_command(stage, seen), "0"),
                                 capture=True)
            if result.returncode != 0:
                failures += 1
                self._check_node(stage, failures, result.stderr)
                self.sleep(options.poll_seconds)
                continue
            failures, status = 0, remote.parse_poll_output(result.stdout)
            for line in status.log:
                self.say(f"[{stage.data}] {line}")
            seen = max(seen, status.lines)
            if status.step is not None and status.step != last_step:
                last_step = status.step
                self.say(f"[{stage.data}] latest checkpoint: step {last_step:,} of "
                         f"{stage.train_steps:,}")
            if self._finished(stage, status):
                return
            self.sleep(options.poll_seconds)

    def _finished(self, stage: Stage, status: remote.PollStatus) -> bool:
        """True when the stage ended well; raises when it failed or vanished."""
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
        """After a failed SSH poll: raises when the VM is not READY or SSH keeps failing."""
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

    def _do_delete(self, step: steps.DeleteNode) -> None:
        """Deletes the VM (a missing one is fine)."""
        from google.api_core import exceptions

        try:
            self.client.delete_node(request=step.request).result(timeout=CREATE_TIMEOUT_S)
        except exceptions.NotFound:
            self.say(f"   {step.request.name} does not exist (nothing to delete)")
        else:
            self.say(f"   deleted {step.request.name}")
        self.created = False
