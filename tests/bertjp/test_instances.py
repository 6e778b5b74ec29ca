"""Instances, masking and records against the reference's create_pretraining_data.py.

The reference's whole program is replayed with bertjp's functions (one
``random.Random(12345)``, documents shuffled, two dupe passes, instances
shuffled): every instance and every byte of the TFRecord stream must match.
"""

import gzip
import hashlib
import json
import lzma
import random

import pytest

from bertjp.instances import (InstanceConfig, create_instances_from_document,
                              num_to_predict, truncate_seq_pair)
from bertjp.records import encode_example, frame_record, instance_features
from bertjp.tokenization import JapaneseTokenizer, load_vocab
from tests.conftest import REFERENCE

CPD = REFERENCE / "create_pretraining_data"
VOCAB = load_vocab(REFERENCE / "vocab" / "wordpiece_unidic_lite" / "vocab.txt")
CONFIG = InstanceConfig(max_seq_length=128, max_predictions_per_seq=19)
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
        tokens = tok.tokenize(line)
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
            instances.extend(create_instances_from_document(doc, draw, CONFIG, VOCAB, rng))
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
    ours = [(list(i.tokens), list(i.masked_lm_positions), list(i.masked_lm_labels),
             int(i.is_random_next)) for i in instances]
    theirs = [(r["tokens"], r["masked_lm_positions"], r["masked_lm_labels"],
               r["next_sentence_label"]) for r in reference]
    assert ours == theirs


def test_the_tfrecord_stream_is_the_reference_byte_for_byte(replayed):
    lower, tok, instances = replayed
    stream = b"".join(
        frame_record(encode_example(instance_features(
            tok.convert_tokens_to_ids(i.tokens), i.segment_ids, i.masked_lm_positions,
            tok.convert_tokens_to_ids(i.masked_lm_labels), i.is_random_next, 128, 19)))
        for i in instances)
    assert hashlib.sha256(stream).hexdigest() == STREAM_SHA256[lower]


def test_invariants_on_every_instance(replayed):
    _, _, instances = replayed
    for inst in instances:
        assert len(inst.tokens) <= 128 and inst.tokens[0] == "[CLS]"
        first_sep = inst.segment_ids.index(1) - 1
        assert inst.tokens[-1] == "[SEP]" and inst.tokens[first_sep] == "[SEP]"
        positions = list(inst.masked_lm_positions)
        assert positions == sorted(set(positions)) and 1 <= len(positions) <= 19
        assert not {0, first_sep, len(inst.tokens) - 1} & set(positions)
        assert len(positions) <= num_to_predict(len(inst.tokens), CONFIG)


def test_no_word_is_partially_masked():
    # Labels are originals, so rebuild word groups from the unmasked token sequence.
    tok, instances = replay("false")
    for inst in instances[:500]:
        original = list(inst.tokens)
        for pos, label in zip(inst.masked_lm_positions, inst.masked_lm_labels, strict=True):
            original[pos] = label
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


def test_configuration_is_checked():
    with pytest.raises(ValueError):
        InstanceConfig(max_seq_length=3)
    with pytest.raises(ValueError):
        InstanceConfig(masked_lm_prob=1.5)
