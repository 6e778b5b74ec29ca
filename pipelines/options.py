"""Command-line handling shared by every pipeline command.

A command parses its own flags with argparse; everything else goes to Beam's
``PipelineOptions`` (``--runner``, ``--direct_num_workers``, Dataflow options...),
as Beam users expect. A flag that neither knows is an error, not a warning, so a
typo never silently changes a job.

Local runs never touch the network: with no ``--runner``, or with
``--runner DirectRunner``, the job runs on Beam's FnApiRunner, which is what the
DirectRunner falls back to after trying to download the Prism runner binary.
It honours ``--direct_running_mode`` (``in_memory``, ``multi_threading``,
``multi_processing``) and ``--direct_num_workers``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

__all__ = ["LOCAL_RUNNER", "add_common_arguments", "parse_args", "setup_logging"]

LOCAL_RUNNER = "FnApiRunner"
_DIRECT_NAMES = {"directrunner", "direct", "switchingdirectrunner"}


def _beam_parser():
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    seen = {}
    for cls in PipelineOptions.__subclasses__():
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)  # pylint: disable=protected-access
    return parser


def _local_runner(beam_args: list[str]) -> list[str]:
    """Replaces an absent or Direct runner by the FnApiRunner."""
    out, runner = [], None
    i = 0
    while i < len(beam_args):
        arg = beam_args[i]
        if arg == "--runner" and i + 1 < len(beam_args):
            runner = beam_args[i + 1]
            i += 2
            continue
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
        else:
            out.append(arg)
        i += 1
    if runner is None or runner.lower() in _DIRECT_NAMES:
        runner = LOCAL_RUNNER
    return [f"--runner={runner}", *out]


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None):
    """Splits ``argv`` into the command's flags and Beam's pipeline options.

    Args:
      parser: the command's parser.
      argv: the arguments (``sys.argv[1:]`` when ``None``).

    Returns:
      ``(args, pipeline_options)``.

    Exits (via ``parser.error``) on a flag that neither the command nor Beam knows.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = parser.parse_known_args(argv)
    _, unknown = _beam_parser().parse_known_args(rest)
    if unknown:
        parser.error(
            "unrecognized arguments: "
            + " ".join(unknown)
            + " (neither a flag of this command nor a Beam pipeline option; see "
            + f"{parser.prog} --help)"
        )
    if not {"--save_main_session", "--no_save_main_session"} & set(rest):
        # The code reaches workers through setup.py or the container image; Beam would
        # otherwise pickle the main session on Dataflow (its cloudpickle default).
        rest.append("--no_save_main_session")
    return args, PipelineOptions(_local_runner(rest))


def setup_logging(verbose: bool = False) -> None:
    """INFO for bertjp's own progress lines; Beam's chatter only with ``--verbose``."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    # bertjp's progress, and Dataflow's job id, console URL and state changes
    for name in ("bertjp", "pipelines", "apache_beam.runners.dataflow.dataflow_runner",
                 "apache_beam.runners.dataflow.internal.apiclient"):
        logging.getLogger(name).setLevel(logging.INFO)
    if not verbose:
        # A failing DoFn is logged by Beam with its whole traceback, then raised;
        # the command reports it once, in one line (``--verbose`` shows both).
        logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags every pipeline command has."""
    parser.add_argument("--verbose", action="store_true", help="log Beam's own INFO messages too")
    parser.add_argument("--allow-empty", action="store_true",
                        help="accept a result that kept nothing (or under 1 %%) of the input "
                        "instead of failing")
    parser.add_argument("--skip-manifest-check", action="store_true",
                        help="read input shards even when they differ from the manifest beside "
                        "them (PREFIX.manifest.json: other files, sizes, missing shards)")
