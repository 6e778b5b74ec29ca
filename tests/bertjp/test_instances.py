"""Instances, masking and records against the reference's create_pretraining_data.py.

The reference's whole program is replayed with bertjp's functions (one
``random.Random(12345)``, documents shuffled, two dupe passes, instances
shuffled): every instance and every byte of the TFRecord stream must match.
"""

import collections
import gzip
import hashlib
import json
import lzma
import random

import pytest

from bertjp.instances import (
    InstanceConfig,
    Specials,
    _shuffled_lazily,
    bucket_instances,
    create_instances_from_document,
    create_masked_lm_predictions,
    document_drawer,
    num_to_predict,
    truncate_seq_pair,
)
from bertjp.records import InstanceEncoder, encode_example, frame_record, instance_features
from bertjp.tokenization import JapaneseTokenizer, load_vocab
from tests.conftest import REFERENCE

CPD = REFERENCE / "create_pretraining_data"
VOCAB = load_vocab(REFERENCE / "vocab" / "wordpiece_unidic_lite" / "vocab.txt")
CONFIG = InstanceConfig(max_seq_length=128, max_predictions_per_seq=19, reference_shuffle=True)
SPECIALS = Specials.from_vocab(VOCAB)
CLS, SEP = SPECIALS.cls, SPECIALS.sep
STREAM_SHA256 = {
    "true": "eb53e7453eeb6d7e13fc56fbf2461627688db345fd95e3fc68167cc95055cd92",
    "false": "fa007e97caccf381d374a13706d6440be6e4a214ec8a47f154bc7308877e7f21",
}


def replay(lower: str):
    tok = JapaneseTokenizer(VOCAB, do_lower_case=lower == "true")
    rng = random.Random(12345)
    docs = [[]]
    for raw in gzip.open(REFERENCE / "make_corpus_wiki" / "corpus.unidic_lite.txt.gz"):
        line = raw.decode("utf-8", "ignore").strip()
        if not line:
            docs.append([])
        tokens = tok.token_codes(line)
        if tokens:
            docs[-1].append(tokens)
    docs = [d for d in docs if d]
    rng.shuffle(docs)
    instances = []
    for _ in range(2):
        for idx, doc in enumerate(docs):
            def draw(r, idx=idx):
                for _ in range(10):
                    j = r.randint(0, len(docs) - 1)
                    if j != idx:
                        break
                return docs[j]
            instances.extend(create_instances_from_document(doc, draw, CONFIG, SPECIALS, rng))
    rng.shuffle(instances)
    return tok, instances


@pytest.fixture(scope="module", params=["true", "false"])
def replayed(request):
    return request.param, *replay(request.param)


def test_every_instance_equals_the_reference(replayed):
    lower, _, instances = replayed
    name = f"pretraining_data.wordpiece.lower_{lower}.decoded.jsonl.xz"
    with lzma.open(CPD / name, "rt", encoding="utf-8") as f:
        reference = [json.loads(line) for line in f]
    assert len(instances) == len(reference) == {"true": 3163, "false": 3379}[lower]
    ours = [([VOCAB[t] for t in i.input_ids], list(i.masked_lm_positions),
             [VOCAB[t] for t in i.masked_lm_ids], int(i.is_random_next)) for i in instances]
    theirs = [(r["tokens"], r["masked_lm_positions"], r["masked_lm_labels"],
               r["next_sentence_label"]) for r in reference]
    assert ours == theirs


def test_the_tfrecord_stream_is_the_reference_byte_for_byte(replayed):
    lower, _, instances = replayed
    stream = b"".join(
        frame_record(encode_example(instance_features(
            i.input_ids, i.segment_ids, i.masked_lm_positions, i.masked_lm_ids,
            i.is_random_next, 128, 19)))
        for i in instances)
    assert hashlib.sha256(stream).hexdigest() == STREAM_SHA256[lower]
    # The fast encoder the pipeline uses writes the same bytes.
    encoder = InstanceEncoder(128, 19)
    fast = b"".join(encoder.encode(i.input_ids, i.a_length, i.masked_lm_positions,
                                   i.masked_lm_ids, i.is_random_next) for i in instances)
    assert fast == stream


def test_invariants_on_every_instance(replayed):
    _, _, instances = replayed
    for inst in instances:
        ids = inst.input_ids
        assert len(ids) <= 128 and ids[0] == CLS
        first_sep = inst.segment_ids.index(1) - 1
        assert first_sep == inst.a_length - 1
        assert ids[-1] == SEP and ids[first_sep] == SEP
        positions = list(inst.masked_lm_positions)
        assert positions == sorted(set(positions)) and 1 <= len(positions) <= 19
        assert not {0, first_sep, len(ids) - 1} & set(positions)
        assert len(positions) <= num_to_predict(len(ids), CONFIG)


def test_no_word_is_partially_masked():
    # Labels are originals, so rebuild word groups from the unmasked token sequence.
    tok, instances = replay("false")
    for inst in instances[:500]:
        original = [VOCAB[i] for i in inst.input_ids]
        for pos, label in zip(inst.masked_lm_positions, inst.masked_lm_ids, strict=True):
            original[pos] = VOCAB[label]
        masked = set(inst.masked_lm_positions)
        group = []
        for i, token in enumerate(original + ["[SEP]"]):
            if token.startswith("##") and group:
                group.append(i)
                continue
            if group:
                hits = masked & set(group)
                assert not hits or hits == set(group), (original, inst.masked_lm_positions)
            group = [] if token in ("[CLS]", "[SEP]") else [i]


@pytest.mark.parametrize("length,expected", [
    (30, 4), (50, 8), (70, 10), (90, 14), (128, 19), (130, 19), (512, 19)])
def test_num_to_predict_rounds_half_to_even(length, expected):
    assert num_to_predict(length, CONFIG) == expected
    assert num_to_predict(512, InstanceConfig(max_seq_length=512,
                                              max_predictions_per_seq=76)) == 76
    assert num_to_predict(150, InstanceConfig(max_predictions_per_seq=76)) == 22


def test_truncate_seq_pair_trims_the_longer_side_b_on_ties():
    a, b = list("aaaaaa"), list("bbbb")
    truncate_seq_pair(a, b, 6, random.Random(0))
    assert len(a) + len(b) == 6 and len(a) == 3 and len(b) == 3
    a, b = list("aa"), list("bb")
    truncate_seq_pair(a, b, 3, random.Random(0))
    assert (len(a), len(b)) == (2, 1)


def _reference_truncate(tokens_a, tokens_b, max_num_tokens, rng):
    # google-research/bert create_pretraining_data.py, verbatim logic
    while True:
        total_length = len(tokens_a) + len(tokens_b)
        if total_length <= max_num_tokens:
            break
        trunc_tokens = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        assert len(trunc_tokens) >= 1
        if rng.random() < 0.5:
            del trunc_tokens[0]
        else:
            trunc_tokens.pop()


def test_truncation_draws_and_cuts_as_the_reference():
    for seed in range(300):
        r = random.Random(seed)
        a, b = list(range(r.randint(1, 200))), list(range(1000, 1000 + r.randint(1, 200)))
        limit = r.randint(2, 260)
        ours_a, ours_b, ours_rng = a[:], b[:], random.Random(seed)
        ref_a, ref_b, ref_rng = a[:], b[:], random.Random(seed)
        truncate_seq_pair(ours_a, ours_b, limit, ours_rng)
        _reference_truncate(ref_a, ref_b, limit, ref_rng)
        assert (ours_a, ours_b) == (ref_a, ref_b)
        assert ours_rng.random() == ref_rng.random()  # the same number of draws


def test_the_lazy_shuffle_gives_every_order_equally_often():
    rng = random.Random(7)
    counts = collections.Counter(tuple(_shuffled_lazily(list("abc"), rng)) for _ in range(6000))
    assert len(counts) == 6
    assert all(abs(c - 1000) < 150 for c in counts.values()), counts  # ~5 sigma


def test_the_lazy_shuffle_masks_like_the_reference_shuffle():
    # [CLS] + words of 1-3 tokens + [SEP] ...: per-position mask rates and the number
    # of masked tokens agree between the two shuffles within sampling error.
    layout = [1, 2, 1, 3, 1, 1, 2, 1, 3, 2, 1, 1, 2, 1, 1, 3, 1, 2, 1, 1] * 3
    codes = [CLS << 1]
    for size in layout:
        codes += [100 << 1] + [101 << 1 | 1] * (size - 1)
    codes += [SEP << 1]
    trials = 3000
    rates, totals = {}, {}
    for reference in (True, False):
        config = InstanceConfig(reference_shuffle=reference)
        hits = collections.Counter()
        sizes = collections.Counter()
        for seed in range(trials):
            _, positions, _ = create_masked_lm_predictions(
                codes, config, SPECIALS, random.Random(seed * 2 + reference))
            hits.update(positions)
            sizes[len(positions)] += 1
        rates[reference] = [hits[i] / trials for i in range(len(codes))]
        totals[reference] = sizes
    assert rates[True][0] == rates[False][0] == 0  # never [CLS]
    worst = max(abs(a - b) for a, b in zip(rates[True], rates[False], strict=True))
    assert worst < 0.05, worst  # sd of a difference ~0.009 at p = 0.15
    for n in set(totals[True]) | set(totals[False]):
        assert abs(totals[True][n] - totals[False][n]) / trials < 0.05


def test_a_bucket_gives_the_same_instances_in_any_member_order():
    import array

    tok = JapaneseTokenizer(VOCAB)
    docs = [[tok.token_codes(f"これは{d}番目の文書の{i}番目の文です。") for i in range(6)]
            for d in range(5)]
    members = [(f"f.txt:{d}", [array.array("H", s).tobytes() for s in doc])
               for d, doc in enumerate(docs)]
    first = list(bucket_instances(members, 1, 7, CONFIG, SPECIALS, "H"))
    again = list(bucket_instances(members[::-1], 1, 7, CONFIG, SPECIALS, "H"))
    assert first == again and len(first) >= 5
    assert len({key for key, _ in first}) == len(first)  # one record key per instance
    assert first != list(bucket_instances(members, 2, 7, CONFIG, SPECIALS, "H"))  # other pass


def test_the_drawer_avoids_the_document_itself():
    documents = [["a"], ["b"], ["c"]]
    draw = document_drawer(documents, 1)
    rng = random.Random(3)
    assert all(draw(rng) != ["b"] for _ in range(200))
    assert document_drawer([["only"]], 0)(random.Random(0)) == ["only"]  # as the reference


@pytest.mark.parametrize("kwargs,message", [
    ({"max_seq_length": 3}, "--max-seq-length must be at least 5, got 3"),
    ({"masked_lm_prob": 1.5}, "--masked-lm-prob must be in (0, 1), got 1.5"),
    ({"short_seq_prob": -0.1}, "--short-seq-prob must be in [0, 1], got -0.1"),
    ({"max_predictions_per_seq": 0}, "--max-predictions-per-seq must be at least 1, got 0"),
    ({"max_seq_length": 128, "max_predictions_per_seq": 126},
     "--max-predictions-per-seq 126 is more than a sequence of --max-seq-length 128 can hold: "
     "at most 125"),
])
def test_configuration_errors_name_the_flags(kwargs, message):
    with pytest.raises(ValueError) as err:
        InstanceConfig(**kwargs)
    assert str(err.value).startswith(message)


def test_a_sequence_holds_all_but_its_three_special_tokens():
    assert InstanceConfig(max_seq_length=128, max_predictions_per_seq=125).max_maskable == 125
    assert InstanceConfig(max_seq_length=5, max_predictions_per_seq=2).max_maskable == 2


def test_truncate_seq_pair_returns_what_it_removed():
    a, b = list("aaaaaa"), list("bbbb")
    assert truncate_seq_pair(a, b, 6, random.Random(0)) == 4
    assert truncate_seq_pair(list("ab"), list("c"), 3, random.Random(0)) == 0


def test_instances_carry_the_tokens_truncation_dropped():
    # One sentence of 300 tokens: A is all of it, B the 50-token random document;
    # 350 tokens are cut to 125 (128 minus [CLS] and two [SEP]).
    config = InstanceConfig(max_seq_length=128, max_predictions_per_seq=19, short_seq_prob=0)
    long = [[(100 + i) << 1 for i in range(300)]]
    other = [[(500 + i) << 1 for i in range(50)]]
    [inst] = create_instances_from_document(long, lambda r: other, config, SPECIALS,
                                            random.Random(5))
    assert inst.tokens_truncated == 225 and len(inst.input_ids) == 128 and inst.is_random_next
    short = create_instances_from_document([[5 << 1] * 10, [6 << 1] * 10], lambda r: other,
                                           config, SPECIALS, random.Random(1))
    assert short and all(i.tokens_truncated == 0 for i in short)
