"""``bertjp import``: a transformers BERT directory -> a Model Garden TF2 checkpoint.

The inverse of ``bertjp convert`` (:mod:`training.convert`), to continue pretraining a
released model: a local ``BertForPreTraining`` or ``BertForMaskedLM`` directory
(``config.json``, ``model.safetensors`` or ``pytorch_model.bin``, ``vocab.txt``,
``tokenizer_config.json``) becomes ``OUTPUT/ckpt-0`` of Model Garden's
``bert/pretraining`` experiment, saved as ``tf.train.Checkpoint(model,
**model.checkpoint_items)`` (the trainer's layout without step counter and optimizer,
so ``task.init_checkpoint`` and ``bertjp convert --checkpoint OUTPUT`` read it), with the
experiment's ``params.yaml`` (``training.configs``, the model's encoder shape) and the
vocabulary files beside it.

Every Model Garden variable is filled through ``training.convert``'s mapping table,
inverted (:mod:`.mapping`), with shape checks; every tensor of the model must be used.
The encoder's own pooler (which ``bertjp convert`` skips) gets the model's pooler. A
model without an NSP head gets a fresh one (truncated normal kernels, zero biases,
seeded). Model Garden's gelu is the tanh approximation: a model whose config says
``gelu`` (exact) is imported with a warning giving the measured logit difference.

Model Garden's ``task.init_checkpoint`` restores ``model.checkpoint_items`` only: the
encoder, the masked LM and the NSP head's pooler, not the NSP output layer (which
``bertjp convert`` reads from ``model/classification_heads/0/out_proj``); restore
``tf.train.Checkpoint(model=model)`` to get that too.

The modules: :mod:`.source` (the transformers directory), :mod:`.mapping` (the
inverted table), :mod:`.garden` (the experiment config, the model, the checkpoint),
:mod:`.activation` (the gelu measurement), :mod:`.driver` (:func:`import_model`) and
:mod:`.cli` (:func:`main`).
"""

from training.importer.cli import main
from training.importer.driver import ImportResult, import_model
from training.importer.source import architecture_from_config, read_source

__all__ = ["ImportResult", "architecture_from_config", "import_model", "main", "read_source"]
