"""The counted-DoFn plumbing: ``TallyDoFn`` tallies, ``TalliedParDo``'s three outputs,
and dead-letter records."""

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.options import LOCAL_RUNNER
from pipelines.stats import NAMESPACE, TalliedParDo, TallyDoFn, dead_letter


def local_pipeline():
    """Beam's ``TestPipeline`` on the local runner (no network)."""
    return test_pipeline.TestPipeline(runner=LOCAL_RUNNER)


class ParseIntsFn(TallyDoFn):
    """A small counted DoFn: ``"3"`` → 3; anything else is a dead letter."""

    def process(self, element):
        self.count("seen")
        self.count("never", 0)
        try:
            value = int(element)
        except ValueError:
            self.count("dropped.not_a_number")
            yield dead_letter("in.txt", 1, "not_a_number", "not an integer", element)
            return
        self.count("odd", value % 2)
        yield value


def summed_counts(stats):
    """The ``("count", {...})`` tallies of every bundle, summed into one dict."""
    return (
        stats
        | "Counts" >> beam.Filter(lambda s: s[0] == "count")
        | "Values" >> beam.Map(lambda s: s[1])
        | "Sum" >> beam.CombineGlobally(_sum_dicts)
    )


def _sum_dicts(dicts) -> dict:
    total = {}
    for d in dicts:
        for name, n in d.items():
            total[name] = total.get(name, 0) + n
    return total


def test_a_tallied_pardo_splits_records_stats_and_dead_letters():
    with local_pipeline() as p:
        out = p | beam.Create(["1", "2", "x", "3", "5"]) | TalliedParDo(ParseIntsFn())
        assert_that(out.main, equal_to([1, 2, 3, 5]), label="Records")
        assert_that(summed_counts(out.stats),
                    equal_to([{"seen": 5, "odd": 3, "dropped.not_a_number": 1}]),
                    label="Tallies")
        assert_that(out.dead, equal_to([{
            "source": "in.txt", "line": 1, "reason": "not_a_number",
            "detail": "not an integer", "excerpt": "x"}]), label="DeadLetters")


def test_tallies_are_beam_counters_too():
    p = local_pipeline()
    _ = p | beam.Create(["1", "2", "x"]) | TalliedParDo(ParseIntsFn())
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(
        MetricsFilter().with_namespace(NAMESPACE))["counters"]}
    assert counters == {"seen": 3, "odd": 1, "dropped.not_a_number": 1}


def test_side_inputs_reach_the_dofn():
    class AddFn(TallyDoFn):
        def process(self, element, offset):
            self.count("added")
            yield element + offset

    with local_pipeline() as p:
        offset = p | "Offset" >> beam.Create([10])
        out = (p | "Values" >> beam.Create([1, 2])
               | TalliedParDo(AddFn(), offset=beam.pvalue.AsSingleton(offset)))
        assert_that(out.main, equal_to([11, 12]), label="Records")
        assert_that(out.dead, equal_to([]), label="NoDeadLetters")


def test_a_dofn_run_by_hand_tallies_per_bundle():
    fn = ParseIntsFn()
    fn.start_bundle()
    assert list(fn.process("7")) == [7]
    (stats,) = list(fn.finish_bundle())
    assert stats.tag == "stats" and stats.value.value == ("count", {"seen": 1, "odd": 1})
    fn.start_bundle()
    assert list(fn.finish_bundle()) == []  # nothing counted: nothing emitted


def test_a_dead_letter_keeps_200_characters_of_the_record():
    raw = b"a" + "é".encode("utf-8") * 150  # the cut at 200 bytes splits a character
    record = dead_letter("gs://b/f.gz", 7, "too_long", "301 bytes", raw, doc_id="42").value
    assert record["excerpt"] == "a" + "é" * 99 + "\ufffd"
    assert record["doc_id"] == "42" and record["line"] == 7
    assert "doc_id" not in dead_letter("f", 1, "r", "d", "x" * 300).value
    assert dead_letter("f", 1, "r", "d", "x" * 300).value["excerpt"] == "x" * 200
