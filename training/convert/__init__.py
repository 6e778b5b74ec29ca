"""``bertjp convert``: a Model Garden TF2 BERT checkpoint -> a transformers directory.

The input is a checkpoint of the ``bert/pretraining`` experiment (``BertPretrainerV2``
with a ``BertEncoder`` and the ``next_sentence`` classification head) as Model Garden's
trainer writes it: ``tf.train.Checkpoint(global_step, model, optimizer, encoder,
masked_lm, next_sentence.pooler_dense)`` saved as ``MODEL_DIR/ckpt-N``, with the
experiment's ``params.yaml`` beside it. The output is a transformers
``BertForPreTraining`` (PyTorch, safetensors) with its ``config.json``, plus the
tokenizer files (``vocab.txt`` and a ``BertJapaneseTokenizer`` ``tokenizer_config.json``),
so ``AutoModel*.from_pretrained(OUT)`` and ``AutoTokenizer.from_pretrained(OUT)`` work.

transformers 5 has no TensorFlow loader, so the variables are read with
``tf.train.load_checkpoint`` and mapped explicitly (recipe §10):

* ``masked_lm/embedding_table`` -> word embeddings and the tied MLM decoder;
  ``encoder/layer_with_weights-1/-2/-3`` -> position and token type embeddings and the
  embeddings LayerNorm; ``-4 ... -(L+3)`` -> the L transformer layers (q/k/v kernels
  ``[H, heads, dh]`` and the attention output kernel ``[heads, dh, H]`` become
  ``[H, H]``; every kernel is transposed to PyTorch's ``[out, in]``);
* ``masked_lm/dense|layer_norm|output_bias`` -> ``cls.predictions``;
* the NSP head's ``pooler_dense`` -> ``bert.pooler.dense`` and its ``out_proj`` ->
  ``cls.seq_relationship``. The encoder's own pooler (``-(L+4)``) is never trained in
  ``bert/pretraining`` and is skipped, as are optimizer slots and counters.

Every model parameter must be written exactly once from a checkpoint variable of the
expected shape; anything else is an error naming the variable.

The modules: :mod:`.architecture` (the :class:`Architecture` from ``params.yaml`` or a
size), :mod:`.inputs` (the checkpoint prefix and the vocabulary directory),
:mod:`.checkpoint` (the checkpoint's layout and a reader), :mod:`.mapping` (checkpoint
variable -> parameter, with the shape and coverage checks), :mod:`.writer` (the output
directory), :mod:`.driver` (:func:`convert`) and :mod:`.cli` (:func:`main`).
"""

from training.convert.architecture import (
    Architecture,
    architecture_from_params,
    architecture_from_size,
)
from training.convert.cli import main
from training.convert.driver import convert
from training.convert.inputs import find_checkpoint, read_vocab_dir, subword_type
from training.convert.mapping import TensorSource, parameter_sources

__all__ = [
    "Architecture",
    "TensorSource",
    "architecture_from_params",
    "architecture_from_size",
    "convert",
    "find_checkpoint",
    "main",
    "parameter_sources",
    "read_vocab_dir",
    "subword_type",
]
