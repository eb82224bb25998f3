"""Helpers shared by every chapter of *Regression to BERT*.

Importing this package is cheap and changes nothing: torch and TensorFlow are only imported (and
configured) when a chapter calls :func:`setup`.

Infrastructure: ``device`` (frameworks, device, seeds), ``profile`` (quick/full sizes), ``train``
(a small PyTorch training loop), ``plot``, ``check`` (assertions and exercise self-checks), ``bench``,
``course`` (repository address, Colab badge, the shared set-up cell).
Course content, one module per idea: ``regression`` (chapter 1), then ``cnn``, ``rnn``, ``attention``,
``bert`` as the chapters that teach them land.
"""
from .course import install_missing
from .device import setup

__all__ = ["install_missing", "setup"]
