"""The typed steps of a ``bertjp train tpu`` :class:`Plan`, one dataclass per kind.

A step holds what it needs to run (a command, an API request, its stage) and says
what it does with :meth:`Step.describe`, which ``--dry-run`` prints. Each class has a
``kind``, a short label (``plan.kinds()`` lists them; the two package steps share
``local``); the executor chooses its handler by the step's type.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import Any, ClassVar

from training.tpu.options import STAGE_DEFS, TpuOptions

__all__ = [
    "WORKDIR",
    "BuildPackage",
    "CheckpointStatus",
    "CopyPackage",
    "CreateNode",
    "DeleteNode",
    "InitCheckpoint",
    "Install",
    "Plan",
    "Poll",
    "Preflight",
    "RequireCheckpoint",
    "RunStage",
    "Stage",
    "Step",
    "WaitReady",
]

WORKDIR = "bertjp"  # configs, logs, exit codes and the package on the VM


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


@dataclasses.dataclass(frozen=True)
class Step:
    """A step of a :class:`Plan`; subclasses add what they run.

    Attributes:
      title: one line saying what the step does.
      kind: the step's short label (class attribute).
      always: run also after a failure or Ctrl-C (class attribute).

    Steps that run a command have ``argv``; for the others (API calls, preflight) it
    is None.
    """

    title: str
    kind: ClassVar[str] = ""
    always: ClassVar[bool] = False

    @property
    def detail(self) -> dict[str, Any]:
        """The step's fields by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def describe(self) -> str:
        """What the step does, as ``--dry-run`` prints it."""
        return "\n".join([self.title, *self._detail_lines()])

    def _detail_lines(self) -> list[str]:
        """The lines after the title."""
        return []


@dataclasses.dataclass(frozen=True)
class Preflight(Step):
    """Checks a stage's manifest against its experiment and the files its prefix matches."""

    kind: ClassVar[str] = "preflight"
    argv: ClassVar[None] = None
    stage: Stage
    manifest: str
    hosts: int
    pattern: str

    def _detail_lines(self) -> list[str]:
        return [f"preflight.check(load_manifest({self.manifest!r}), config, "
                f"num_hosts={self.hosts})",
                f"and the files {self.pattern} matches: exactly the manifest's shards, "
                "with its sizes"]


@dataclasses.dataclass(frozen=True)
class _Command(Step):
    """A step that runs ``argv`` (here, or over SSH on the VM)."""

    argv: list[str]

    def _detail_lines(self) -> list[str]:
        return [shlex.join(self.argv)]


@dataclasses.dataclass(frozen=True)
class _StageCommand(_Command):
    """A command about one ``stage``."""

    stage: Stage


@dataclasses.dataclass(frozen=True)
class CheckpointStatus(_StageCommand):
    """Reads a stage's checkpoint: the stage is skipped when it is at its train steps."""

    kind: ClassVar[str] = "status"


@dataclasses.dataclass(frozen=True)
class RequireCheckpoint(_StageCommand):
    """Stage 2 alone: stage 1's model dir must hold a checkpoint."""

    kind: ClassVar[str] = "require"


@dataclasses.dataclass(frozen=True)
class BuildPackage(_Command):
    """Builds the package's sdist in ``cwd`` into the directory ``mkdir``."""

    kind: ClassVar[str] = "local"
    cwd: str
    mkdir: str

    def _detail_lines(self) -> list[str]:
        return [f"(in {self.cwd}) {shlex.join(self.argv)}"]


@dataclasses.dataclass(frozen=True)
class CopyPackage(_Command):
    """Copies the package (and constraints) to Cloud Storage."""

    kind: ClassVar[str] = "local"


@dataclasses.dataclass(frozen=True)
class InitCheckpoint(_Command):
    """``--init-from``: stages the model's checkpoint to ``target`` (``MODEL_DIR/init``)
    with a ``checkpoint`` state file naming it; a transformers directory (``source_kind``
    ``transformers``) is imported into ``local_dir`` first. ``argv`` is the copy as
    planned (the files are listed when the step runs)."""

    kind: ClassVar[str] = "init"
    source: str
    source_kind: str
    checkpoint: str
    local_dir: str
    target: str

    def _detail_lines(self) -> list[str]:
        lines = []
        if self.source_kind == "transformers":
            lines.append(f"training.importer.import_model({self.source!r}, "
                         f"{self.local_dir + '/import'!r})")
        return [*lines, shlex.join(self.argv)]


@dataclasses.dataclass(frozen=True)
class Install(_Command):
    """Installs Python, the package and tensorflow-tpu on every worker."""

    kind: ClassVar[str] = "remote"


@dataclasses.dataclass(frozen=True)
class RunStage(_StageCommand):
    """Starts a stage's training, detached, on worker 0."""

    kind: ClassVar[str] = "start"


@dataclasses.dataclass(frozen=True)
class Poll(_StageCommand):
    """Follows a stage until it ends; ``argv`` is the first poll."""

    kind: ClassVar[str] = "follow"

    def _detail_lines(self) -> list[str]:
        return [*super()._detail_lines(), "(repeated until the exit code appears; later "
                "polls skip the lines already shown)"]


@dataclasses.dataclass(frozen=True)
class _ApiCall(Step):
    """A Cloud TPU API call with ``request``; ``method`` names the client's method."""

    method: ClassVar[str] = ""
    argv: ClassVar[None] = None
    request: Any

    def _detail_lines(self) -> list[str]:
        return [f"TpuClient.{self.method}(request=)", type(self.request).to_json(self.request)]


@dataclasses.dataclass(frozen=True)
class CreateNode(_ApiCall):
    """Creates the TPU VM."""

    kind: ClassVar[str] = "create"
    method: ClassVar[str] = "create_node"


@dataclasses.dataclass(frozen=True)
class WaitReady(_ApiCall):
    """Waits until the TPU VM is READY."""

    kind: ClassVar[str] = "wait"
    method: ClassVar[str] = "get_node"


@dataclasses.dataclass(frozen=True)
class DeleteNode(_ApiCall):
    """Deletes the TPU VM; runs also after a failure or Ctrl-C."""

    kind: ClassVar[str] = "delete"
    method: ClassVar[str] = "delete_node"
    always: ClassVar[bool] = True


@dataclasses.dataclass
class Plan:
    """The ordered steps of one ``bertjp train tpu`` run."""

    options: TpuOptions
    steps: list[Step]
    stages: list[Stage]

    def kinds(self) -> list[str]:
        """The steps' kinds, in order."""
        return [s.kind for s in self.steps]

    def find(self, kind: str | type[Step]) -> list[Step]:
        """The steps of one kind (a label or a step class), in order."""
        if isinstance(kind, str):
            return [s for s in self.steps if s.kind == kind]
        return [s for s in self.steps if isinstance(s, kind)]
