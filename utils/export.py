"""Exporting a trained classifier for other runtimes: ONNX (run by ONNX Runtime, from C++, C#, Java or a browser)
and a TensorFlow SavedModel of the classifier's Keras twin (TF Serving, TFLite converters).

Shape legend
    B   batch size
    T   sequence length in tokens
    C   number of classes
"""
import contextlib
import io
import logging
import pathlib
import warnings

import numpy as np
import torch
from torch import nn

from .device import lazy_keras_classes

ONNX_INPUTS = ("input_ids", "attention_mask")


@contextlib.contextmanager
def _quiet_exporter():
    # torch.onnx logs one line per torchvision operator it cannot find (torchvision is not installed) and
    # torch.export warns about an internal pytree API; neither concerns the model being exported.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            warnings.filterwarnings("ignore", message=".*axis name.*")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(model: nn.Module, path, example_ids: torch.Tensor, dynamic: bool = True) -> pathlib.Path:
    """Write ``model`` (ids (B, T), mask (B, T) -> logits (B, C)) to ``path`` as one ONNX file with torch's
    default (``torch.export``-based) exporter, in eval mode. ``dynamic=True`` keeps batch size and length free;
    ``dynamic=False`` freezes them to ``example_ids``' shape (the pitfall of a fixed batch size)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(example_ids, torch.Tensor) or example_ids.dim() != 2 or example_ids.is_floating_point():
        raise TypeError(f"example_ids must be an integer tensor (B, T), got {example_ids!r:.80}")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()  # dropout off in the exported graph
    example_mask = torch.ones_like(example_ids)
    shapes = None
    if dynamic:
        batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=512)
        shapes = {"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}}
    try:
        with _quiet_exporter():
            torch.onnx.export(model, (example_ids, example_mask), str(path), input_names=list(ONNX_INPUTS),
                              output_names=["logits"], dynamic_shapes=shapes, dynamo=True, external_data=False,
                              verbose=False)
    finally:
        model.train(was_training)
    return path


def onnx_session(path, threads: int | None = None):
    """An ONNX Runtime CPU session for ``path``, and a function ``forward(input_ids, attention_mask)`` (numpy
    int64 (B, T) each) -> logits (B, C)."""
    import onnxruntime as ort

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file at {path}: write one with export_onnx")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = options.inter_op_num_threads = threads
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(input_ids, attention_mask):
        return session.run(["logits"], {"input_ids": np.asarray(input_ids, np.int64),
                                        "attention_mask": np.asarray(attention_mask, np.int64)})[0]

    return session, forward


# ------------------------------------------------------------------------------------------- Keras twin
def _keras_classifier_class():
    import keras

    from .bert_keras import KerasBertModel

    class KerasBertClassifier(keras.Model):
        """Keras twin of ``utils.bert.BertForSequenceClassification``: ``call(input_ids (B, T),
        attention_mask (B, T) or None) -> logits (B, C)`` (the mask comes from ``[PAD]`` when None)."""

        def __init__(self, config, num_labels: int = 2, **kwargs):
            super().__init__(**kwargs)
            self.bert = KerasBertModel(config)
            self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)
            self.classifier = keras.layers.Dense(num_labels, name="classifier")

        def call(self, input_ids, attention_mask=None, training=None):
            _, pooled = self.bert(input_ids, attention_mask, training=training)
            return self.classifier(self.dropout(pooled, training=training))

    return KerasBertClassifier


def copy_classifier_to_keras(torch_model, keras_model) -> None:
    """Copy a ``BertForSequenceClassification``'s weights into a :class:`KerasBertClassifier` of the same config:
    BERT's body with ``utils.bert_keras.copy_bert_to_keras``, the head as a Dense kernel (in, out)."""
    from .bert import BertForSequenceClassification
    from .bert_keras import copy_bert_to_keras
    from .rnn import linear_to_keras

    if not isinstance(torch_model, BertForSequenceClassification):
        raise TypeError(f"torch_model must be a BertForSequenceClassification, got {type(torch_model).__name__}")
    if keras_model.classifier.units != torch_model.classifier.out_features:
        raise ValueError(f"the Keras head has {keras_model.classifier.units} classes, the PyTorch one "
                         f"{torch_model.classifier.out_features}: build KerasBertClassifier with the same num_labels")
    if not keras_model.built:
        keras_model(np.ones((1, 2), dtype="int64"))  # Keras creates weights on the first call
    copy_bert_to_keras(torch_model.bert, keras_model.bert)
    keras_model.classifier.set_weights(linear_to_keras(torch_model.classifier))


def export_saved_model(keras_model, folder) -> pathlib.Path:
    """``keras_model.export`` as a TensorFlow SavedModel whose ``serve(input_ids (B, T) int32)`` returns logits."""
    import tensorflow as tf

    folder = pathlib.Path(folder)
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel(logging.ERROR)  # "Assets written to <folder>" on each save: the chapter prints its own summary
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # export also prints the signature it wrote
            keras_model.export(str(folder), format="tf_saved_model",
                               input_signature=[tf.TensorSpec((None, None), tf.int32, name="input_ids")])
    finally:
        logger.setLevel(level)
    return folder


# PEP 562: KerasBertClassifier is built on first access, so importing never starts TensorFlow
__getattr__ = lazy_keras_classes(__name__, ("KerasBertClassifier",),
                                 lambda: {"KerasBertClassifier": _keras_classifier_class()})
