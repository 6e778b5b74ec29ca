"""Driving a pipeline DoFn as a worker does (``bertjp_cli.estimate.steps``)."""

from __future__ import annotations

import typing

from apache_beam import coders

from bertjp_cli.estimate.steps import DoFnRun, encoded_bytes
from pipelines.stats import TallyDoFn, dead_letter


class _Twice(TallyDoFn):
    """Emits each element twice; an odd one also as a dead letter."""

    def __init__(self):
        super().__init__()
        self.set_up = False

    def setup(self):
        self.set_up = True

    def process(self, element):
        self.count("seen")
        if element % 2:
            yield dead_letter("f", element, "odd", "an odd number", b"x")
        yield element
        yield element


def test_records_counts_and_dead_letters_are_sorted_out():
    run = DoFnRun(_Twice())
    assert run.fn.set_up
    assert run.process([1, 2]) == [1, 1, 2, 2]
    assert run.dead_letters == 1
    assert run.finish() == {"seen": 2}


def test_a_warm_up_element_is_not_counted():
    run = DoFnRun(_Twice())
    run.warm_up(3)
    assert run.process([4]) == [4, 4]
    assert run.finish() == {"seen": 1} and run.dead_letters == 0


def test_encoded_bytes_are_the_default_coders():
    coder = coders.registry.get_coder(typing.Any)
    elements = [("key", [b"\x01\x02", b"abc"]), (7, "テキスト")]
    assert encoded_bytes(elements) == sum(len(coder.encode(e)) for e in elements)
    assert encoded_bytes([]) == 0
