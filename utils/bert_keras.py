"""The Keras 3 twin of chapter 6's BERT, and copying a PyTorch :class:`utils.bert.BertModel`'s weights into it.

``KerasBertModel`` reads the same :class:`utils.bert.BertConfig` and computes the same maths from
:mod:`utils.attention_keras`'s ``KerasTransformerEncoderBlock``s, so ``copy_bert_to_keras`` can move every weight
across and chapter 6 can check that the outputs are equal. Importing this module imports Keras (and its
TensorFlow backend); :mod:`utils.bert` itself never does.

Shape legend: B batch size, T sequence length, D hidden size, V vocabulary size (as in :mod:`utils.bert`).
"""
import numpy as np

from . import _validate as check
from . import attention_keras
from .bert import BertConfig, BertModel
from .rnn import linear_to_keras

# isort: split
# Keras after torch (which .bert imports): the import order that works (utils.device.import_torch_first)
import keras
from keras import ops


class KerasBertModel(keras.Model):
    """Keras twin of :class:`utils.bert.BertModel` built from ``utils.attention_keras.KerasTransformerEncoderBlock``.

    ``call(input_ids (B, T), attention_mask (B, T) or None, token_type_ids (B, T) or None)
    -> (sequence_output (B, T, D), pooled_output (B, D))``; same config, same maths.
    """

    def __init__(self, config: BertConfig, **kwargs):
        if not isinstance(config, BertConfig):
            raise TypeError(f"config must be a BertConfig, got {type(config).__name__}")
        super().__init__(**kwargs)
        self.config = config
        D, eps = config.hidden_size, config.layer_norm_eps
        self.word_embeddings = keras.layers.Embedding(config.vocab_size, D, name="word_embeddings")
        self.position_embeddings = keras.layers.Embedding(config.max_position_embeddings, D,
                                                          name="position_embeddings")
        self.token_type_embeddings = keras.layers.Embedding(config.type_vocab_size, D, name="token_type_embeddings")
        # Keras' LayerNormalization defaults to epsilon=1e-3: BERT needs its own 1e-12
        self.embeddings_norm = keras.layers.LayerNormalization(epsilon=eps, name="embeddings_LayerNorm")
        self.embeddings_dropout = keras.layers.Dropout(config.hidden_dropout_prob)
        self.encoder_layers = [
            attention_keras.KerasTransformerEncoderBlock(D, config.num_attention_heads, config.intermediate_size,
                                                         dropout=config.hidden_dropout_prob,
                                                         activation=config.hidden_act, layer_norm_eps=eps,
                                                         name=f"layer_{i}")
            for i in range(config.num_hidden_layers)]
        self.pooler = keras.layers.Dense(D, activation="tanh", name="pooler")

    def call(self, input_ids, attention_mask=None, token_type_ids=None, training=None):
        if attention_mask is None:
            attention_mask = ops.not_equal(input_ids, self.config.pad_token_id)
        if token_type_ids is None:
            token_type_ids = ops.zeros_like(input_ids)
        positions = ops.arange(ops.shape(input_ids)[1])                                     # (T,)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)[None]
             + self.token_type_embeddings(token_type_ids))                                  # (B, T, D)
        x = self.embeddings_dropout(self.embeddings_norm(x), training=training)
        mask = ops.cast(attention_mask, "bool")                                              # (B, T)
        for block in self.encoder_layers:
            x = block(x, mask=mask, training=training)                                       # (B, T, D)
        return x, self.pooler(x[:, 0])                                                       # (B, T, D), (B, D)


# ------------------------------------------------------------------------------------ weights across
def copy_bert_to_keras(torch_model: BertModel, keras_model: KerasBertModel) -> None:
    """Copy every weight of a PyTorch :class:`utils.bert.BertModel` into a :class:`KerasBertModel` of the same
    config. Embedding tables keep their (rows, D) layout; Linear weights (out, in) become Dense kernels (in, out)."""
    if not isinstance(torch_model, BertModel):
        raise TypeError(f"torch_model must be a BertModel (for a classifier pass model.bert), "
                        f"got {type(torch_model).__name__}")
    sizes = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "max_position_embeddings", "type_vocab_size")
    keras_config = getattr(keras_model, "config", None)
    differ = [f"{k}: PyTorch {getattr(torch_model.config, k)}, Keras {getattr(keras_config, k, None)}"
              for k in sizes if getattr(torch_model.config, k) != getattr(keras_config, k, None)]
    if differ:
        raise ValueError("cannot copy: the two BERTs have different sizes (nothing was copied); build KerasBertModel "
                         "from the same BertConfig. Differences: " + "; ".join(differ))
    if not keras_model.built:
        keras_model(np.ones((1, 2), dtype="int64"))  # Keras creates weights on the first call
    emb = torch_model.embeddings

    def numpy(t):
        return t.detach().cpu().numpy()

    pairs = [(getattr(keras_model, name), [numpy(getattr(emb, name).weight)])
             for name in ("word_embeddings", "position_embeddings", "token_type_embeddings")]
    pairs.append((keras_model.embeddings_norm, [numpy(emb.LayerNorm.weight), numpy(emb.LayerNorm.bias)]))
    for torch_block, keras_block in zip(torch_model.encoder.layer, keras_model.encoder_layers, strict=True):
        pairs += attention_keras.encoder_block_pairs(torch_block, keras_block)
    pairs.append((keras_model.pooler, linear_to_keras(torch_model.pooler.dense)))  # (out, in) -> (in, out)
    check.keras_assignments(pairs, "BERT")
