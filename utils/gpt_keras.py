"""The Keras 3 twin of chapter 7's GPT, and copying a PyTorch :class:`utils.gpt.GPT`'s weights into it.

``KerasGPT`` reads the same :class:`utils.gpt.GPTConfig` and computes the same maths from
:mod:`utils.attention_keras`'s ``KerasTransformerEncoderBlock(norm_first=True)``, so ``copy_gpt_to_keras`` can move
every weight across and chapter 7 can check that the logits are equal. No KV cache: generation is PyTorch's.
Importing this module imports Keras (and its TensorFlow backend); :mod:`utils.gpt` itself never does.

Shape legend: B batch size, T tokens, D model width, V vocabulary size (as in :mod:`utils.gpt`).
"""
import numpy as np

from . import attention_keras
from .attention_keras import copy_encoder_block_to_keras, copy_norm_to_keras
from .gpt import GPT, GPTConfig

# isort: split
# Keras after torch (which .gpt imports): the import order that works (utils.device.import_torch_first)
import keras
from keras import ops


class KerasGPT(keras.Model):
    """Keras twin of :class:`utils.gpt.GPT`: ``call(input_ids (B, T), attention_mask (B, T) or None) -> logits
    (B, T, V)``; same config, same maths, same tied output layer."""

    def __init__(self, config: GPTConfig, **kwargs):
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a utils.gpt.GPTConfig, got {type(config).__name__}")
        super().__init__(**kwargs)
        self.config = config
        D = config.d_model
        self.token_embedding = keras.layers.Embedding(config.vocab_size, D, name="token_embedding")
        self.position_embedding = keras.layers.Embedding(config.context_length, D, name="position_embedding")
        self.embedding_dropout = keras.layers.Dropout(config.dropout)
        self.blocks = [attention_keras.KerasTransformerEncoderBlock(
            D, config.num_heads, config.d_ff, dropout=config.dropout, activation=config.activation,
            norm_first=True, layer_norm_eps=config.layer_norm_eps, name=f"block_{i}")
            for i in range(config.num_layers)]
        self.final_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="final_norm")

    def call(self, input_ids, attention_mask=None, training=None):
        T = ops.shape(input_ids)[1]
        x = self.token_embedding(input_ids) + self.position_embedding(ops.arange(T))[None]  # (B, T, D)
        x = self.embedding_dropout(x, training=training)
        mask = ops.tril(ops.ones((T, T), dtype="bool"))[None, None]                     # (1, 1, T, T)
        if attention_mask is not None:
            padding = ops.cast(attention_mask, "bool")[:, None, None, :]                 # (B, 1, 1, T)
            mask = ops.logical_and(mask, ops.logical_or(padding, ops.eye(T, dtype="bool")[None, None]))
        for block in self.blocks:
            x = block(x, mask=mask, training=training)                                  # (B, T, D)
        return ops.matmul(self.final_norm(x), ops.transpose(self.token_embedding.embeddings))  # (B, T, V), tied


def copy_gpt_to_keras(torch_model: GPT, keras_model: KerasGPT) -> None:
    """Copy every weight of a :class:`utils.gpt.GPT` into a :class:`KerasGPT` of the same config."""
    if not keras_model.built:
        keras_model(np.zeros((1, 2), dtype="int64"))  # Keras creates the weights on the first call
    keras_model.token_embedding.embeddings.assign(torch_model.token_embedding.weight.detach().cpu().numpy())
    keras_model.position_embedding.embeddings.assign(torch_model.position_embedding.weight.detach().cpu().numpy())
    for torch_block, keras_block in zip(torch_model.blocks, keras_model.blocks, strict=True):
        copy_encoder_block_to_keras(torch_block, keras_block)
    copy_norm_to_keras(torch_model.final_norm, keras_model.final_norm)
