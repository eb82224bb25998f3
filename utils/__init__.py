"""Helpers shared by every chapter of *Regression to BERT*.

Importing this package is cheap and changes nothing: torch and TensorFlow are only imported (and
configured) when a chapter calls :func:`setup`.

Infrastructure: ``device`` (frameworks, device, seeds), ``profile`` (quick/full sizes), ``data`` (cached,
checksummed downloads for the full profile), ``train``
(a small PyTorch training loop), ``plot``, ``check`` (assertions and exercise self-checks), ``bench``,
``course`` (repository address, Colab badge, the shared set-up cell).
Course content, one module per idea: ``regression`` (chapter 1), then ``cnn``, ``rnn``, ``attention``,
``bert`` as the chapters that teach them land.
"""


def setup(*args, **kwargs):
    """Configure frameworks, device, profile and seeds: see :func:`utils.device.setup`."""
    from .device import setup as _setup

    return _setup(*args, **kwargs)


def install_missing(*args, **kwargs):
    """In Colab, install the pinned packages the runtime lacks: see :func:`utils.course.install_missing`."""
    from .course import install_missing as _install_missing

    return _install_missing(*args, **kwargs)
