"""Answer key of chapter 4 (recurrent networks): each exercise's expected value, from PyTorch's and Keras'
own layers."""
import numpy as np
import torch
from torch import nn

from .. import _validate as check

EXERCISES = ("lstm_counts", "gru_reset_before", "keras_gru_outputs")


def exercise_reference(name: str, x=None, weights=None):
    """Expected answer of chapter 4's exercise ``name`` (one of :data:`EXERCISES`), taken from real PyTorch and
    Keras layers independently of the learner's formulas, so the notebook's check cell does not display how.

    lstm_counts: [parameters of nn.LSTM(10, 20), of keras.layers.LSTM(20) on 10 inputs] -> array (2,).
    gru_reset_before: final state of ``keras.layers.GRU(H, reset_after=False)`` with
    ``weights = [kernel (D, 3H), recurrent (H, 3H), bias (3H,)]`` on ``x`` (B, T, D) -> array (B, H).
    keras_gru_outputs: all outputs of ``keras.layers.GRU(H, return_sequences=True)`` (``reset_after=True``) with
    ``weights = [kernel (D, 3H), recurrent (H, 3H), bias (2, 3H)]`` on ``x`` (B, T, D) -> array (B, T, H).
    """
    import keras

    if name not in EXERCISES:
        raise ValueError(f"name must be one of {', '.join(EXERCISES)}, got {name!r}")
    if name == "lstm_counts":
        if x is not None or weights is not None:
            raise TypeError("exercise 'lstm_counts' takes no x and no weights")
        keras_lstm = keras.layers.LSTM(20)
        keras_lstm.build((None, 7, 10))
        return np.array([sum(p.numel() for p in nn.LSTM(10, 20).parameters()), keras_lstm.count_params()])
    if x is None or weights is None:
        raise TypeError(f"exercise {name!r} needs x (B, T, D) and weights [kernel, recurrent, bias]")
    x = check.array("x", x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, 3, spec="(B, T, D)",
                    dtype=np.float32)
    if not isinstance(weights, (list, tuple)) or len(weights) != 3:
        raise TypeError(f"weights must be a list [kernel, recurrent, bias], got {type(weights).__name__}")
    kernel = check.array("kernel", weights[0], 2, spec="(D, 3H)", dtype=np.float32)
    if kernel.shape[0] != x.shape[2] or kernel.shape[1] % 3:
        raise ValueError(f"kernel must have shape (D, 3H) with D = {x.shape[2]}, got {kernel.shape}")
    reset_after = name == "keras_gru_outputs"
    gru = keras.layers.GRU(kernel.shape[1] // 3, reset_after=reset_after, return_sequences=reset_after)
    gru.build((None, x.shape[1], x.shape[2]))
    gru.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
    return keras.ops.convert_to_numpy(gru(x))
