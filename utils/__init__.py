"""Helpers shared by every chapter of *Regression to BERT*: the course's ideas, one module per idea.

The map of the package:
- Ideas, in the order the chapters teach them: ``regression`` (linear, logistic, softmax regression), ``metrics``
  (accuracy, precision/recall, exact match, BLEU), ``mlp`` (activations, a teaching autograd engine, initialisation,
  the MLP and its Keras twin), ``optim`` (optimisers and learning-rate schedules from their formulas, the
  learning-rate range test), ``cnn``, ``rnn``, ``attention`` (attention, masks, positions, Transformer blocks) with
  ``attention_keras`` (their Keras twins and copying weights into them) and ``attention_interop`` (the same weights
  copied into ``torch.nn``'s and Keras' own attention layers, to check ours against theirs), ``seq2seq`` (the date
  task, vocabularies, the two translators, decoding), ``bert`` (the model, its pre-training heads and loss) with
  ``bert_interop`` (real checkpoints: Hugging Face's names, safetensors weights) and ``bert_keras`` (its Keras
  twin), ``wordpiece`` (BERT's tokenizer), ``pretraining`` (BERT's pre-training data:
  segments, next-sentence pairs, masking), ``sentiment`` (the sentiment task chapters 6 and 9 share and its
  full-profile checkpoint), ``bpe`` (byte-level BPE tokenizer), ``gpt`` (the GPT: config, causal attention, block,
  model, next-token loss) with ``gpt_interop`` (GPT-2's weights to and from ``transformers``) and ``gpt_keras`` (its
  Keras twin), ``lm_eval`` (bits per byte, the Witten-Bell n-gram baseline), ``decoding`` (KV cache, logits
  filters, generation), ``distributed`` (training large
  models: memory accounting, gradient accumulation, a ring all-reduce, the ``torchrun`` launcher) with
  ``ddp_train``, the script chapter 8 runs under ``torchrun -m utils.ddp_train``; then shipping a model: ``deploy``
  (a standard model folder, ``TextClassifier.predict``, fixed-step fine-tuning), ``lora`` (LoRA layers, = ``peft``,
  merging), ``quantize`` (per-channel int8 from its formula, PyTorch's dynamic int8), ``export`` (ONNX and a Keras
  SavedModel) and ``serve`` (a FastAPI service, the process that runs it, a load test).
- ``stats``: the course's one way to compare two models (paired over seeds, McNemar and bootstrap over test items,
  the printed verdict), taught in chapter 2.
- Thin infrastructure the chapters call: ``device`` (frameworks, device, seeds), ``profile`` (quick/full sizes),
  ``corpus`` (the pinned Python 3.11.7 text snapshot in data/), ``data`` (cached, checksummed downloads), ``train``
  (a small PyTorch training loop), ``plot``, ``check``
  (assertions and exercise self-checks).
- ``_validate`` (private): the cheap argument checks every module shares, so bad input is refused at the
  course's API with a ``ValueError``/``TypeError`` naming the parameter, the value and what is accepted.
- ``answers``: the exercises' answer keys, one module per chapter (``ch01_regression``, ...), kept apart so that
  reading an idea module never shows a solution.
- ``course``: the machinery that builds and checks the course (set-up cell, Colab badge, ``bench``, student
  editions, glossary); ``./course`` runs it, a learner never needs it.

Importing this package is cheap and changes nothing: torch and TensorFlow are only imported (and
configured) when a chapter calls :func:`setup`.
"""


def setup(*args, **kwargs):
    """Configure frameworks, device, profile and seeds: see :func:`utils.device.setup`."""
    from .device import setup as _setup

    return _setup(*args, **kwargs)


def install_missing(*args, **kwargs):
    """In Colab, install the pinned packages the runtime lacks: see :func:`utils.course.install_missing`."""
    from .course import install_missing as _install_missing

    return _install_missing(*args, **kwargs)
