"""Bad input to ``utils``: one table of wrong calls per module, as a learner makes them.

Each row is ``(callable, exception type, words the message must contain)``: the call must raise exactly that type
(not a subclass), from a check in ``utils/`` (not from deep inside a library), and the words name the parameter and
what is accepted, so an error says what to fix. After the tables: a failed load, copy, ``fit`` or download
leaves every tensor, file and folder as it was.
"""
import json
import os
import pathlib

import numpy as np
import pytest
import torch
from torch import nn

from utils import attention as A
from utils import attention_interop as AI
from utils import attention_keras as AK
from utils import bert as B
from utils import (
    bert_interop,
    bert_keras,
    check,
    cnn,
    data,
    deploy,
    device,
    lora,
    metrics,
    plot,
    profile,
    quantize,
    regression,
    rnn,
    seq2seq,
    serve,
    train,
)
from utils import export as export_
from utils import pretraining as PT
from utils import wordpiece as WP
from utils.answers import ch09_deployment

torch.manual_seed(0)
D, H = 16, 4
UTILS = pathlib.Path(__file__).resolve().parent.parent / "utils"


def cases(module, table):
    """pytest params from ``{id: (callable, exception, [words])}``, with ids ``module-id``."""
    return [pytest.param(fn, exc, words, id=f"{module}-{name}") for name, (fn, exc, words) in table.items()]


def assert_refused(fn, exc, words):
    with pytest.raises(exc) as info:
        fn()
    assert type(info.value) is exc, f"raised {type(info.value).__name__}, the table says {exc.__name__}"
    raiser = pathlib.Path(str(info.traceback[-1].path))
    assert UTILS in raiser.parents, f"raised inside {raiser}, not by a check in utils/: {info.value}"
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} missing from the message: {message}"


# ------------------------------------------------------------------------------------------- regression
X3 = np.ones((5, 3))
REGRESSION = {
    "standardizer_1d": (lambda: regression.Standardizer().fit(np.ones(5)), ValueError, ["X", "(N, D)"]),
    "standardizer_empty": (lambda: regression.Standardizer().fit(np.ones((0, 2))), ValueError, ["X", "one row"]),
    "standardizer_other_width": (lambda: regression.Standardizer().fit(X3).transform(np.ones((2, 4))), ValueError,
                                 ["X", "D = 3"]),
    "bias_column_1d": (lambda: regression.add_bias_column(np.ones(4)), ValueError, ["X", "(N, D)"]),
    "poly_degree_float": (lambda: regression.polynomial_features(np.ones(3), 2.5), TypeError, ["degree", "int"]),
    "poly_2d_input": (lambda: regression.polynomial_features(X3, 2), ValueError, ["x", "(N,)"]),
    "normal_eq_lengths": (lambda: regression.normal_equation(X3, np.ones(4)), ValueError, ["X", "y", "same length"]),
    "normal_eq_negative_l2": (lambda: regression.normal_equation(X3, np.ones(5), l2=-1), ValueError, ["l2", ">= 0"]),
    "mse_column_vs_row": (lambda: regression.mse(np.ones((5, 1)), np.ones(5)), ValueError,
                          ["y_pred", "same", "(N, N)"]),
    "mse_grad_w_size": (lambda: regression.mse_loss_and_grad(X3, np.ones(5), np.ones(4)), ValueError, ["w", "D = 3"]),
    "bce_shapes": (lambda: regression.binary_cross_entropy(np.ones(3) / 2, np.ones(4)), ValueError, ["p", "y"]),
    "logistic_w_size": (lambda: regression.logistic_loss_and_grad(X3, np.ones(5), np.ones(2)), ValueError, ["w"]),
    "softmax_1d": (lambda: regression.softmax(np.ones(3)), ValueError, ["Z", "(N, C)"]),
    "one_hot_float_labels": (lambda: regression.one_hot(np.array([0.5, 1.0]), 3), TypeError, ["y", "integer"]),
    "one_hot_zero_classes": (lambda: regression.one_hot(np.array([0]), 0), ValueError, ["num_classes", ">= 1"]),
    "one_hot_out_of_range": (lambda: regression.one_hot(np.array([0, 3]), 3), ValueError, ["labels", "[0, 2]"]),
    "cross_entropy_label_range": (lambda: regression.cross_entropy(np.ones((2, 3)) / 3, np.array([0, 3])),
                                  ValueError, ["y", "[0, 2]"]),
    "softmax_grad_W_rows": (lambda: regression.softmax_loss_and_grad(X3, np.zeros(5, int), np.ones((4, 2))),
                            ValueError, ["W", "D = 3"]),
    "gd_batch_size_zero": (lambda: regression.gradient_descent(X3, np.ones(5), regression.mse_loss_and_grad,
                                                               np.zeros(3), 0.1, 1, batch_size=0),
                           ValueError, ["batch_size", ">= 1"]),
    "gd_epochs_float": (lambda: regression.gradient_descent(X3, np.ones(5), regression.mse_loss_and_grad,
                                                            np.zeros(3), 0.1, 2.0), TypeError, ["epochs", "int"]),
    "gd_lengths": (lambda: regression.gradient_descent(X3, np.ones(4), regression.mse_loss_and_grad, np.zeros(3),
                                                       0.1, 1), ValueError, ["X", "y", "same length"]),
    "softmax_regression_zero_classes": (lambda: regression.SoftmaxRegression(4, 0), ValueError, ["num_classes"]),
    "softmax_regression_width": (lambda: regression.SoftmaxRegression(4, 2)(torch.ones(3, 5)), ValueError,
                                 ["x", "D=4"]),
    "fit_softmax_labels": (lambda: regression.fit_softmax_regression(X3, np.array([0, 1, 2, 3, 4]), 3),
                           ValueError, ["y", "num_classes"]),
}

# -------------------------------------------------------------------------------------------- metrics
METRICS = {
    "confusion_shapes": (lambda: metrics.confusion_matrix([0, 1], [0, 1, 1]), ValueError, ["y_true", "y_pred", "same"]),
    "confusion_negative": (lambda: metrics.confusion_matrix([0, -1], [0, 1]), ValueError, ["labels", ">= 0"]),
    "confusion_too_few_classes": (lambda: metrics.confusion_matrix([0, 4], [0, 1], num_classes=3), ValueError,
                                  ["num_classes", ">= 5"]),
    "confusion_float_labels": (lambda: metrics.confusion_matrix([0.5], [1.0]), TypeError, ["y_true", "integer"]),
    "accuracy_broadcast": (lambda: metrics.accuracy(np.zeros((4, 1)), np.zeros(4)), ValueError,
                           ["y_true", "y_pred", "same"]),
    "accuracy_empty": (lambda: metrics.accuracy([], []), ValueError, ["non-empty"]),
    "prf_binary_with_3_classes": (lambda: metrics.precision_recall_f1([0, 1, 2], [0, 2, 2]), ValueError,
                                  ["average='binary'", "'macro'"]),
    "prf_average": (lambda: metrics.precision_recall_f1([0, 1], [0, 1], average="micro"), ValueError,
                    ["average", "'macro'"]),
    "exact_match_lengths": (lambda: metrics.exact_match(["a"], ["a", "b"]), ValueError, ["predictions", "references"]),
    "ngram_n_zero": (lambda: metrics.ngram_counts("abc", 0), ValueError, ["n", ">= 1"]),
    "bleu_max_n": (lambda: metrics.bleu(["ab"], ["ab"], max_n=0), ValueError, ["max_n", ">= 1"]),
    "bleu_empty": (lambda: metrics.bleu([], []), ValueError, ["candidates", "references"]),
}

# ------------------------------------------------------------------------------------------------ cnn
x4 = np.ones((1, 1, 5, 5))
w4 = np.ones((2, 1, 3, 3))
CNN = {
    "conv_output_size_float": (lambda: cnn.conv_output_size(5.0, 3), TypeError, ["n", "int"]),
    "conv_output_size_too_big": (lambda: cnn.conv_output_size(2, 5), ValueError, ["kernel", "padded input"]),
    "receptive_field_item": (lambda: cnn.receptive_field([3, 1]), TypeError, ["layers", "(kernel, stride)"]),
    "conv2d_3d_input": (lambda: cnn.conv2d(np.ones((1, 5, 5)), w4), ValueError, ["x", "(B, C_in, H, W)"]),
    "conv2d_channels": (lambda: cnn.conv2d(np.ones((1, 2, 5, 5)), w4), ValueError, ["channels", "C_in=1"]),
    "conv2d_bias_shape": (lambda: cnn.conv2d(x4, w4, np.ones(3)), ValueError, ["bias", "(C_out,)"]),
    "conv2d_stride_zero": (lambda: cnn.conv2d(x4, w4, stride=0), ValueError, ["stride", ">= 1"]),
    "conv2d_kernel_larger": (lambda: cnn.conv2d(np.ones((1, 1, 2, 2)), w4), ValueError, ["kernel", "padded input"]),
    "conv2d_fast_string": (lambda: cnn.conv2d(x4, w4, fast="yes"), TypeError, ["fast", "True"]),
    "conv2d_backward_grad": (lambda: cnn.conv2d_backward(x4, w4, np.ones((1, 2, 4, 4))), ValueError,
                             ["grad_out", "(1, 2, 3, 3)"]),
    "im2col_3d": (lambda: cnn.im2col(np.ones((1, 5, 5)), 3, 3), ValueError, ["x", "(B, C, H, W)"]),
    "max_pool_3d": (lambda: cnn.max_pool2d(np.ones((1, 4, 4))), ValueError, ["x", "(B, C, H, W)"]),
    "max_pool_size_zero": (lambda: cnn.max_pool2d(x4, 0), ValueError, ["size", ">= 1"]),
    "max_pool_size_too_big": (lambda: cnn.max_pool2d(x4, 6), ValueError, ["size", "(H, W) = (5, 5)"]),
    "batch_norm_gamma_shape": (lambda: cnn.batch_norm(np.ones((2, 3, 2, 2)), np.ones(2), np.zeros(3), np.zeros(3),
                                                      np.ones(3), True), ValueError, ["gamma", "(C,) = (3,)"]),
    "batch_norm_momentum": (lambda: cnn.batch_norm(np.ones((2, 3, 2, 2)), np.ones(3), np.zeros(3), np.zeros(3),
                                                   np.ones(3), True, momentum=2), ValueError, ["momentum", "[0, 1]"]),
    "nchw_3d": (lambda: cnn.nchw_to_nhwc(np.ones((3, 4, 4))), ValueError, ["x", "(B, C, H, W)"]),
    "kernel_to_keras_2d": (lambda: cnn.torch_kernel_to_keras(np.ones((3, 3))), ValueError,
                           ["w", "(C_out, C_in, kh, kw)"]),
    "dense_after_flatten_chw": (lambda: cnn.dense_after_flatten_to_keras(np.ones((4, 12)), (3, 2)), ValueError,
                                ["chw", "(C, H, W)"]),
    "lenet_negative_channels": (lambda: cnn.LeNetConfig(channels=(-1, 16)), ValueError, ["channels[0]", ">= 1"]),
    "lenet_channels_triple": (lambda: cnn.LeNetConfig(channels=(6, 16, 32)), ValueError, ["channels", "pair"]),
    "lenet_even_kernel": (lambda: cnn.LeNetConfig(kernel_size=4), ValueError, ["kernel_size", "odd"]),
    "lenet_tiny_image": (lambda: cnn.LeNetConfig(image_size=8), ValueError, ["image_size", ">= 12"]),
    "lenet_input_size": (lambda: cnn.LeNet()(torch.ones(2, 1, 32, 32)), ValueError, ["(B, 1, 16, 16)", "image_size"]),
    "lenet_int_input": (lambda: cnn.LeNet()(torch.ones(2, 1, 16, 16, dtype=torch.long)), TypeError,
                        ["x", "floating-point"]),
    "residual_channels": (lambda: cnn.ResidualBlock(4)(torch.ones(1, 3, 5, 5)), ValueError, ["x", "C=4"]),
    "random_shift_3d": (lambda: cnn.random_shift(torch.ones(1, 4, 4), 1), ValueError, ["images", "(B, C, H, W)"]),
    "random_shift_float": (lambda: cnn.random_shift(torch.ones(1, 1, 4, 4), 1.5), TypeError, ["max_shift", "int"]),
    "shifted_images_lengths": (lambda: cnn.ShiftedImages(torch.ones(3, 1, 4, 4), torch.ones(2), 1), ValueError,
                               ["images", "labels", "same length"]),
    "resize_size_zero": (lambda: cnn.resize_images(np.ones((1, 1, 4, 4)), 0), ValueError, ["size", ">= 1"]),
}

# ------------------------------------------------------------------------------------------------ rnn
Hh = 3
W = {"rnn": 1, "gru": 3, "lstm": 4}


def cell_args(cell, D_in=2, B_=2, h_size=Hh):
    G = W[cell]
    x, h = torch.ones(B_, D_in), torch.ones(B_, h_size)
    weights = (torch.ones(G * Hh, 2), torch.ones(G * Hh, Hh), torch.ones(G * Hh), torch.ones(G * Hh))
    return x, ((h, h) if cell == "lstm" else h), weights


RNN = {
    "check_cell": (lambda: rnn.check_cell("transformer"), ValueError, ["cell", "rnn, gru, lstm"]),
    "rnn_cell_feature_size": (lambda: rnn.rnn_cell(torch.ones(2, 5), *cell_args("rnn")[1:2], *cell_args("rnn")[2]),
                              ValueError, ["weight_ih", "(3, 5)"]),
    "gru_cell_state_size": (lambda: rnn.gru_cell(torch.ones(2, 2), torch.ones(2, 4), *cell_args("gru")[2]),
                            ValueError, ["h", "(B, H) = (2, 3)"]),
    "gru_cell_state_batch": (lambda: rnn.gru_cell(torch.ones(2, 2), torch.ones(1, 3), *cell_args("gru")[2]),
                             ValueError, ["h", "(B, H) = (2, 3)"]),
    "lstm_cell_state_not_pair": (lambda: rnn.lstm_cell(torch.ones(2, 2), torch.ones(2, 3), *cell_args("lstm")[2]),
                                 TypeError, ["state", "(h, c)"]),
    "lstm_cell_c_size": (lambda: rnn.lstm_cell(torch.ones(2, 2), (torch.ones(2, 3), torch.ones(2, 5)),
                                               *cell_args("lstm")[2]), ValueError, ["c", "(B, H) = (2, 3)"]),
    "lstm_cell_int_x": (lambda: rnn.lstm_cell(torch.ones(2, 2, dtype=torch.long), cell_args("lstm")[1],
                                              *cell_args("lstm")[2]), TypeError, ["x", "floating-point"]),
    "scratch_zero_hidden": (lambda: rnn.ScratchRNN("gru", 2, 0), ValueError, ["hidden_size", ">= 1"]),
    "scratch_empty_sequence": (lambda: rnn.ScratchRNN("gru", 2, 3)(torch.ones(4, 0, 2)), ValueError, ["T >= 1"]),
    "scratch_int_input": (lambda: rnn.ScratchRNN("rnn", 2, 3)(torch.ones(4, 5, 2, dtype=torch.long)), TypeError,
                          ["x", "floating-point"]),
    "scratch_features": (lambda: rnn.ScratchRNN("rnn", 2, 3)(torch.ones(4, 5, 3)), ValueError, ["x", "D=2"]),
    "scratch_state_batch1": (lambda: rnn.ScratchRNN("gru", 2, 3)(torch.ones(2, 5, 2), torch.ones(1, 1, 3)),
                             ValueError, ["state", "(1, 2, 3)"]),
    "make_recurrent_impl": (lambda: rnn.make_recurrent("gru", 2, 3, impl="keras"), ValueError, ["impl", "scratch"]),
    "make_recurrent_size": (lambda: rnn.make_recurrent("gru", 0, 3), ValueError, ["input_size", ">= 1"]),
    "input_gradient_norms_2d": (lambda: rnn.input_gradient_norms(nn.GRU(2, 3, batch_first=True), torch.ones(4, 2)),
                                ValueError, ["x", "(B, T, D)"]),
    "torch_to_keras_index": (lambda: rnn.torch_to_keras_weights("gru", nn.GRU(2, 3), 1), ValueError,
                             ["index", "[0, 0]"]),
    "torch_to_keras_wrong_cell": (lambda: rnn.torch_to_keras_weights("lstm", nn.GRU(2, 3)), ValueError,
                                  ["cell='lstm'", "cell type"]),
    "make_windows_window": (lambda: rnn.make_windows(np.arange(5.0), 5), ValueError, ["window", "longer"]),
    "make_windows_float": (lambda: rnn.make_windows(np.arange(5.0), 2.0), TypeError, ["window", "int"]),
    "forecaster_3d": (lambda: rnn.Forecaster(4)(torch.ones(2, 5, 1)), ValueError, ["x", "(B, T)"]),
    "char_vocab_empty": (lambda: rnn.CharVocab(""), TypeError, ["text", "non-empty str"]),
    "char_vocab_decode_range": (lambda: rnn.CharVocab("ab").decode([7]), ValueError, ["ids", "0..2"]),
    "next_char_pairs_seq_len": (lambda: rnn.next_char_pairs(np.arange(10), 0), ValueError, ["seq_len", ">= 1"]),
    "char_lm_float_ids": (lambda: rnn.CharLM(5, 4, 8)(torch.ones(2, 3)), TypeError, ["ids", "int64"]),
    "char_lm_dropout": (lambda: rnn.CharLM(5, dropout=1.5), ValueError, ["dropout", "[0, 1)"]),
    "char_lm_state_batch1": (lambda: rnn.CharLM(5, 4, 8).forward_with_state(
        torch.ones(2, 3, dtype=torch.long), (torch.zeros(1, 1, 8), torch.zeros(1, 1, 8))), ValueError,
        ["state", "(layers, B, H) = (1, 2, 8)"]),
    "perplexity_streams": (lambda: rnn.perplexity(rnn.CharLM(5, 4, 8), np.arange(5) % 5, streams=0), ValueError,
                           ["streams", ">= 1"]),
    "sample_temperature": (lambda: rnn.sample(rnn.CharLM(3, 4, 8), rnn.CharVocab("ab"), "a", 3, temperature=0),
                           ValueError, ["temperature", "> 0"]),
    "sample_length": (lambda: rnn.sample(rnn.CharLM(3, 4, 8), rnn.CharVocab("ab"), "a", -1), ValueError,
                      ["length", ">= 0"]),
}

# ------------------------------------------------------------------------------------------ attention
mha = A.MultiHeadAttention(D, H)
q4, k4 = torch.ones(2, H, 5, 4), torch.ones(2, H, 7, 4)
ATTENTION = {
    "causal_mask_zero": (lambda: A.causal_mask(0), ValueError, ["T", ">= 1"]),
    "causal_mask_float": (lambda: A.causal_mask(4.0), TypeError, ["T", "int"]),
    "positional_odd": (lambda: A.sinusoidal_positional_encoding(10, 7), ValueError, ["d_model", "even"]),
    "positional_zero_len": (lambda: A.sinusoidal_positional_encoding(0, 8), ValueError, ["max_len", ">= 1"]),
    "sdpa_batch_mismatch": (lambda: A.scaled_dot_product_attention(q4, k4[:1], k4[:1]), ValueError,
                            ["shapes do not fit", "same leading dims"]),
    "sdpa_mask_shape": (lambda: A.scaled_dot_product_attention(q4, k4, k4, torch.ones(2, 1, 5, 6, dtype=torch.bool)),
                        ValueError, ["mask", "(B, H, Tq, Tk) = (2, 4, 5, 7)"]),
    "sdpa_int_q": (lambda: A.scaled_dot_product_attention(q4.long(), k4, k4), TypeError, ["q", "floating-point"]),
    "mha_zero_heads": (lambda: A.MultiHeadAttention(D, 0), ValueError, ["num_heads", ">= 1"]),
    "mha_not_divisible": (lambda: A.MultiHeadAttention(10, 3), ValueError, ["d_model=10", "num_heads=3"]),
    "mha_dropout": (lambda: A.MultiHeadAttention(D, H, dropout=1.0), ValueError, ["dropout", "[0, 1)"]),
    "mha_causal_as_padding": (lambda: mha(torch.ones(4, 4, D), mask=A.causal_mask(4)), ValueError,
                              ["mask", "causal_mask(T)[None, None]", "B=4"]),
    "mha_causal_wrong_size": (lambda: mha(torch.ones(2, 5, D), mask=A.causal_mask(5)), ValueError,
                              ["mask", "(B, Tk)", "causal_mask(T)[None, None]"]),
    "mha_mask_float": (lambda: mha(torch.ones(2, 5, D), mask=torch.ones(2, 5)), TypeError, ["mask", "bool"]),
    "mha_mask_3d_batch": (lambda: mha(torch.ones(2, 5, D), mask=torch.ones(3, 5, 5, dtype=torch.bool)), ValueError,
                          ["mask", "(B, H, Tq, Tk) = (2, 4, 5, 5)"]),
    "mha_context_batch1": (lambda: mha(torch.ones(2, 5, D), torch.ones(1, 7, D)), ValueError,
                           ["context", "(B, Tk, D) = (2, Tk, 16)", "no broadcasting"]),
    "mha_context_width": (lambda: mha(torch.ones(2, 5, D), torch.ones(2, 7, D + 1)), ValueError, ["context"]),
    "mha_x_width": (lambda: mha(torch.ones(2, 5, D + 1)), ValueError, ["x", "(B, T, D=16)"]),
    "mha_x_2d": (lambda: mha(torch.ones(5, D)), ValueError, ["x", "(B, T, D=16)"]),
    "ffn_zero_width": (lambda: A.PositionwiseFeedForward(D, 0), ValueError, ["d_ff", ">= 1"]),
    # the feed-forward layer computes unchecked inside a block: its input's width is checked at the block's entry
    "encoder_x_width": (lambda: A.TransformerEncoderBlock(D, H, 8)(torch.ones(2, 3, 5)), ValueError, ["x", "D=16"]),
    "encoder_activation": (lambda: A.TransformerEncoderBlock(D, H, 32, activation="swish"), ValueError,
                           ["activation", "'gelu'"]),
    "encoder_eps": (lambda: A.TransformerEncoderBlock(D, H, 32, layer_norm_eps=0), ValueError,
                    ["layer_norm_eps", "> 0"]),
    "decoder_memory_batch1": (lambda: A.TransformerDecoderBlock(D, H, 32)(torch.ones(2, 5, D), torch.ones(1, 7, D)),
                              ValueError, ["memory", "(B, S, D) = (2, S, 16)"]),
    "decoder_memory_mask": (lambda: A.TransformerDecoderBlock(D, H, 32)(torch.ones(2, 5, D), torch.ones(2, 7, D),
                                                                        memory_mask=torch.ones(2, 5,
                                                                                               dtype=torch.bool)),
                            ValueError, ["memory_mask", "(B, Tk) = (2, 7)"]),
    "keras_mha_zero_heads": (lambda: AK.KerasMultiHeadAttention(D, 0), ValueError, ["num_heads", ">= 1"]),
    "keras_mha_context_batch1": (lambda: AK.KerasMultiHeadAttention(D, H)(np.ones((2, 5, D), "float32"),
                                                                         np.ones((1, 7, D), "float32")),
                                 ValueError, ["context", "(B, Tk, D) = (2, Tk, 16)", "no broadcasting"]),
    "keras_mha_causal_2d": (lambda: AK.KerasMultiHeadAttention(D, H)(np.ones((2, 5, D), "float32"),
                                                                    mask=np.tril(np.ones((5, 5), bool))),
                            ValueError, ["mask", "(B, Tk) = (2, 5)", "causal_mask(T)[None, None]"]),
    "keras_ffn_activation": (lambda: AK.KerasPositionwiseFeedForward(D, 32, "swish"), ValueError,
                             ["activation", "'gelu'"]),
    "torch_mha_heads": (lambda: AI.copy_attention_to_torch_mha(mha, nn.MultiheadAttention(D, 2)), ValueError,
                        ["num_heads=4", "same num_heads"]),
    "torch_layer_sizes": (lambda: AI.copy_encoder_block_to_torch_layer(A.TransformerEncoderBlock(D, H, 32),
                                                                      nn.TransformerEncoderLayer(D, H, 64)),
                          ValueError, ["linear1.weight", "nothing was copied"]),
}

# -------------------------------------------------------------------------------------------- seq2seq
s2s = seq2seq.Seq2SeqTransformer(10, 10, src_len=4, d_model=16, num_heads=2, d_ff=32, num_encoder_layers=1,
                                 num_decoder_layers=1, max_len=8)
rnn_s2s = seq2seq.RNNSeq2Seq(10, 10, src_len=4, embed_dim=4, hidden=6)
SEQ2SEQ = {
    "split_fraction": (lambda: seq2seq.split_calendar(test_fraction=1.0), ValueError, ["test_fraction", "(0, 1)"]),
    "split_years": (lambda: seq2seq.split_calendar(2000, 1990), ValueError, ["last_year", "[2000, 9999]"]),
    "date_pairs_no_days": (lambda: seq2seq.make_date_pairs([], 3), ValueError, ["days", "non-empty"]),
    "date_pairs_format": (lambda: seq2seq.make_date_pairs(seq2seq.split_calendar(2000, 2000)[0], 2, formats=[10]),
                          ValueError, ["formats[i]", "[0, 9]"]),
    "vocab_single_string": (lambda: seq2seq.Seq2SeqVocab("abc"), TypeError, ["texts", "list of strings"]),
    "vocab_encode_string": (lambda: seq2seq.Seq2SeqVocab(["abc"]).encode("abc", 5), TypeError, ["texts", "[text]"]),
    "vocab_encode_length": (lambda: seq2seq.Seq2SeqVocab(["abc"]).encode(["abc"], 0), ValueError,
                            ["length", ">= 1"]),
    "vocab_decode_1d": (lambda: seq2seq.Seq2SeqVocab(["abc"]).decode(torch.tensor([3, 4])), ValueError,
                        ["ids", "(N, T)"]),
    "vocab_decode_range": (lambda: seq2seq.Seq2SeqVocab(["abc"]).decode(torch.tensor([[3, 40]])), ValueError,
                           ["id 40", "0..5"]),
    "transformer_src_len": (lambda: seq2seq.Seq2SeqTransformer(10, 10, src_len=80), ValueError,
                            ["src_len=80", "max_len=64"]),
    "transformer_longer_than_max_len": (lambda: s2s(torch.ones(2, 4 + 9, dtype=torch.long)), ValueError,
                                        ["9 tokens", "max_len=8"]),
    "transformer_no_target": (lambda: s2s(torch.ones(2, 4, dtype=torch.long)), ValueError,
                              ["packed", "(B, S + T)", "src_len = 4"]),
    "transformer_float_ids": (lambda: s2s(torch.ones(2, 6)), TypeError, ["packed", "int64"]),
    "transformer_heads": (lambda: seq2seq.Seq2SeqTransformer(10, 10, 4, d_model=10, num_heads=4), ValueError,
                          ["d_model=10", "num_heads=4"]),
    "greedy_max_len": (lambda: seq2seq.greedy_decode(s2s, torch.ones(2, 4, dtype=torch.long), 0), ValueError,
                       ["max_len", ">= 1"]),
    "greedy_model": (lambda: seq2seq.greedy_decode(nn.Linear(2, 2), torch.ones(2, 4, dtype=torch.long), 3),
                     TypeError, ["model", "encode"]),
    "additive_batch": (lambda: seq2seq.AdditiveAttention(3, 4, 5)(torch.ones(2, 3), torch.ones(1, 6, 4)), ValueError,
                       ["query", "keys", "same B"]),
    "additive_mask": (lambda: seq2seq.AdditiveAttention(3, 4, 5)(torch.ones(2, 3), torch.ones(2, 6, 4),
                                                                 torch.ones(2, 6)), TypeError, ["mask", "bool"]),
    "rnn_all_padding_row": (lambda: rnn_s2s(torch.tensor([[3, 4, 0, 0, 1, 5], [0, 0, 0, 0, 1, 5]])), ValueError,
                            ["src", "rows [1]", "all padding"]),
    "rnn_zero_hidden": (lambda: seq2seq.RNNSeq2Seq(10, 10, 4, hidden=0), ValueError, ["hidden", ">= 1"]),
}

# ----------------------------------------------------------------------------------------------- bert
tiny = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=16)
tiny_bert = B.BertModel(B.BertConfig(**tiny))
ids = torch.randint(5, 50, (2, 6))
BERT = {
    "config_no_layers": (lambda: B.BertConfig(**{**tiny, "num_hidden_layers": -1}), ValueError,
                         ["num_hidden_layers", ">= 1"]),
    "config_negative_hidden": (lambda: B.BertConfig(**{**tiny, "hidden_size": -12}), ValueError,
                               ["hidden_size", ">= 1"]),
    "config_zero_heads": (lambda: B.BertConfig(**{**tiny, "num_attention_heads": 0}), ValueError,
                          ["num_attention_heads", ">= 1"]),
    "config_heads_divide": (lambda: B.BertConfig(**{**tiny, "num_attention_heads": 5}), ValueError,
                            ["hidden_size=16", "num_attention_heads=5"]),
    "config_activation": (lambda: B.BertConfig(**{**tiny, "hidden_act": "tanh"}), ValueError,
                          ["hidden_act", "'gelu'"]),
    "config_dropout": (lambda: B.BertConfig(**{**tiny, "hidden_dropout_prob": 1.2}), ValueError,
                       ["hidden_dropout_prob", "[0, 1)"]),
    "config_pad_id": (lambda: B.BertConfig(**{**tiny, "pad_token_id": 50}), ValueError, ["pad_token_id", "[0, 49]"]),
    "config_missing_file": (lambda: B.BertConfig.from_json("/nonexistent/folder"), FileNotFoundError,
                            ["config.json"]),
    "model_float_ids": (lambda: tiny_bert(ids.float()), TypeError, ["input_ids", "int64"]),
    "model_1d_ids": (lambda: tiny_bert(ids[0]), ValueError, ["input_ids", "(B, T)"]),
    "model_too_long": (lambda: tiny_bert(torch.randint(5, 50, (1, 17))), ValueError,
                       ["17 tokens", "max_position_embeddings=16"]),
    "model_mask_shape": (lambda: tiny_bert(ids, torch.ones(2, 5, dtype=torch.long)), ValueError,
                         ["attention_mask", "(2, 6)"]),
    "model_float_additive_mask": (lambda: tiny_bert(ids, torch.zeros(2, 6)), TypeError,
                                  ["attention_mask", "0/1 integers or bool"]),
    "model_token_types_shape": (lambda: tiny_bert(ids, None, torch.zeros(2, 5, dtype=torch.long)), ValueError,
                                ["token_type_ids", "(2, 6)"]),
    "classifier_labels": (lambda: B.BertForSequenceClassification(B.BertConfig(**tiny), num_labels=0), ValueError,
                          ["num_labels", ">= 1"]),
    "pretraining_masked_dtype": (lambda: B.BertForPreTraining(B.BertConfig(**tiny))(ids, torch.zeros_like(ids),
                                                                                    torch.zeros_like(ids)),
                                 TypeError, ["masked", "bool"]),
    "pretraining_loss_lengths": (lambda: B.pretraining_loss(torch.ones(3, 50), torch.ones(2, 2),
                                                            torch.zeros(4, dtype=torch.long),
                                                            torch.zeros(2, dtype=torch.long)),
                                 ValueError, ["mlm_labels", "(M,)"]),
    "load_hf_not_dict": (lambda: bert_interop.load_hf_weights(tiny_bert, [1, 2]), TypeError, ["state_dict", "dict"]),
    "wordpiece_not_str": (lambda: WP.wordpiece_tokenize(["un"], {"un"}), TypeError, ["word", "str"]),
    "train_wordpiece_size": (lambda: WP.train_wordpiece(["a b"], 3), ValueError, ["vocab_size", "special tokens"]),
    "train_wordpiece_string": (lambda: WP.train_wordpiece("a b c", 30), TypeError, ["texts", "[text]"]),
    "segments_length": (lambda: PT.split_into_segments([1, 2, 3], 0), ValueError, ["length", ">= 1"]),
    "nsp_rng": (lambda: PT.make_nsp_pairs([[[1]], [[2]]], 0, 8, 2, 3), TypeError, ["rng", "default_rng"]),
    "nsp_one_document": (lambda: PT.make_nsp_pairs([[[1], [2]]], np.random.default_rng(0), 8, 2, 3), ValueError,
                         ["two non-empty documents"]),
    "mask_tokens_prob": (lambda: PT.mask_tokens(ids, ids == 0, 4, 50, mask_prob=1.5), ValueError,
                         ["mask_prob", "(0, 1)"]),
    "mask_tokens_mask_id": (lambda: PT.mask_tokens(ids, ids == 0, 60, 50), ValueError, ["mask_id", "[0, 49]"]),
    "mask_tokens_special": (lambda: PT.mask_tokens(ids, (ids == 0).long(), 4, 50), ValueError,
                            ["special", "bool"]),
    "mlm_accuracy_empty": (lambda: PT.masked_lm_accuracy(torch.ones(0, 50), torch.zeros(0, dtype=torch.long)),
                           ValueError, ["mlm_logits", "M >= 1"]),
    "copy_to_keras_classifier": (lambda: bert_keras.copy_bert_to_keras(
        B.BertForSequenceClassification(B.BertConfig(**tiny)), None), TypeError, ["torch_model", "model.bert"]),
}

# ---------------------------------------------------------------------------------------------- train
model = nn.Linear(3, 2)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(4, 3), torch.zeros(4, dtype=torch.long)),
                                     batch_size=2)
empty = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(0, 3), torch.zeros(0, dtype=torch.long)),
                                    batch_size=2)
sgd = torch.optim.SGD(model.parameters(), lr=0.1)
ce = nn.CrossEntropyLoss()
TRAIN = {
    "fit_empty_loader": (lambda: train.fit(model, empty, ce, sgd, 1, progress=False), ValueError,
                         ["train_loader", "0 batches", "at least one batch"]),
    "fit_empty_val_loader": (lambda: train.fit(model, loader, ce, sgd, 1, val_loader=empty, progress=False),
                             ValueError, ["val_loader", "0 batches"]),
    "fit_epochs_float": (lambda: train.fit(model, loader, ce, sgd, 2.0, progress=False), TypeError, ["epochs", "int"]),
    "fit_epochs_zero": (lambda: train.fit(model, loader, ce, sgd, 0, progress=False), ValueError, ["epochs", ">= 1"]),
    "fit_device": (lambda: train.fit(model, loader, ce, sgd, 1, device="gpu", progress=False), ValueError,
                   ["device", "'cuda'"]),
    "fit_amp": (lambda: train.fit(model, loader, ce, sgd, 1, amp="fp16", progress=False), ValueError,
                ["amp", "'float16'"]),
    "fit_loader_not_sized": (lambda: train.fit(model, (b for b in loader), ce, sgd, 1, progress=False), TypeError,
                             ["train_loader", "DataLoader"]),
    "fit_optimizer": (lambda: train.fit(model, loader, ce, "adam", 1, progress=False), TypeError,
                      ["optimizer", "torch.optim"]),
    "fit_clip": (lambda: train.fit(model, loader, ce, sgd, 1, clip_grad_norm=0, progress=False), ValueError,
                 ["clip_grad_norm", "> 0"]),
    "evaluate_empty": (lambda: train.evaluate(model, empty, ce), ValueError, ["loader", "0 batches"]),
    "accuracy_shapes": (lambda: train.accuracy(torch.ones(4, 3), torch.ones(5)), ValueError, ["logits", "targets"]),
    "seconds_per_step_steps": (lambda: train.seconds_per_step(model, (torch.ones(2, 3), torch.zeros(2).long()), ce,
                                                              "cpu", steps=0), ValueError, ["steps", ">= 1"]),
    "seconds_per_step_batch": (lambda: train.seconds_per_step(model, torch.ones(2, 3), ce, "cpu"), TypeError,
                               ["batch", "(inputs, targets)"]),
    "loader_options_device": (lambda: train.loader_options("tpu"), ValueError, ["device", "'cpu'"]),
    "load_weights_missing_file": (lambda: train.load_weights(model, "/nonexistent/w.safetensors"), FileNotFoundError,
                                  ["no weights file"]),
    "save_checkpoint_state": (lambda: train.save_checkpoint("/tmp/x.pt", [1]), TypeError, ["state", "dict"]),
}

# ------------------------------------------------------------------------------ data, profile, device
DATA = {
    "download_urls_string": (lambda: data.download("x", "https://a/b", "0" * 64), ValueError,
                             ["urls", "list of URL strings"]),
    "download_scheme": (lambda: data.download("x", ["ftp://a/b"], "0" * 64), ValueError, ["URL", "http, https, file"]),
    "download_sha": (lambda: data.download("x", ["https://a/b"], "abc"), ValueError, ["sha256", "64 hexadecimal"]),
    "download_filename": (lambda: data.download("x", ["https://a/b"], "0" * 64, filename="../b"), ValueError,
                          ["filename", "plain file name"]),
    "cache_dir_type": (lambda: data.cache_dir(42), TypeError, ["cache_dir", "folder path"]),
    "extract_type": (lambda: data.extract("/tmp/archive.rar"), ValueError, ["accepted archive types", ".zip"]),
}


def _with_env(variable, value, fn):
    def call():
        old = os.environ.get(variable)
        os.environ[variable] = value
        try:
            return fn()
        finally:
            if old is None:
                del os.environ[variable]
            else:
                os.environ[variable] = old
    return call


def _override(raw):
    return _with_env("COURSE_OVERRIDES", raw, lambda: profile.pick(dict(epochs=1), dict(epochs=9), "quick"))


PROFILE_DEVICE = {
    "override_type": (_override('{"epochs": "five"}'), TypeError, ["epochs='five'", "int"]),
    "override_bool_for_int": (_override('{"epochs": true}'), TypeError, ["epochs=True", "int"]),
    "override_unknown_key": (_override('{"epoch": 3}'), ValueError, ["epoch", "accepted: ['epochs']"]),
    "override_not_json": (_override("epochs=3"), ValueError, ["COURSE_OVERRIDES", "JSON object"]),
    "pick_not_dict": (lambda: profile.pick([("epochs", 1)], dict(epochs=9)), TypeError, ["quick", "dict"]),
    "profile_name": (lambda: profile.current("medium"), ValueError, ["profile", "quick, full"]),
    "profile_type": (lambda: profile.current(1), TypeError, ["profile", "quick, full"]),
    "threads_env": (_with_env("COURSE_THREADS", "abc", lambda: device.setup(verbose=False)), ValueError,
                    ["COURSE_THREADS", "int >= 1"]),
    "threads_zero_env": (_with_env("COURSE_THREADS", "0", lambda: device.setup(verbose=False)), ValueError,
                         ["COURSE_THREADS", "int >= 1"]),
    "threads_argument": (lambda: device.setup(threads=-2, verbose=False), ValueError, ["threads", ">= 1"]),
    "setup_seed": (lambda: device.setup(seed=-1, verbose=False), ValueError, ["seed", "non-negative"]),
    "setup_seed_float": (lambda: device.setup(seed=1.5, verbose=False), TypeError, ["seed", "int"]),
    "device_name": (lambda: device.device_name("gpu"), ValueError, ["device", "auto, cpu, cuda, mps"]),
    "device_type": (lambda: device.device_name(0), TypeError, ["device", "auto, cpu, cuda, mps"]),
    "amp_value": (lambda: device.mixed_precision_dtype("half", "cpu"), ValueError, ["amp", "'bfloat16'"]),
}

# ------------------------------------------------------------------------------------------ check, plot
CHECK_PLOT = {
    "relative_diff_shapes": (lambda: check.relative_diff(np.ones(3), np.ones((3, 1))), ValueError,
                             ["a and b", "same shape"]),
    "relative_diff_zero": (lambda: check.relative_diff(np.ones(3), np.zeros(3)), ValueError, ["b", "zeros"]),
    "assert_close_atol": (lambda: check.assert_close(1.0, 1.0, atol=-1), ValueError, ["atol", ">= 0"]),
    "check_answer_rtol": (lambda: check.check_answer(1.0, 1.0, rtol="tight"), TypeError, ["rtol", "number"]),
    "max_abs_diff_shapes": (lambda: check.max_abs_diff(np.ones(2), np.ones(3)), ValueError, ["shapes differ"]),
    "plot_history_keys_string": (lambda: plot.plot_history({"loss": [1]}, keys="loss"), TypeError,
                                 ["keys", "['loss']"]),
    "plot_history_unknown_key": (lambda: plot.plot_history({"loss": [1]}, keys=["acc"]), ValueError,
                                 ["'acc'", "accepted: 'loss'"]),
    "plot_history_not_dict": (lambda: plot.plot_history([1, 2]), TypeError, ["history", "dict"]),
    "decision_boundary_3d": (lambda: plot.plot_decision_boundary(lambda p: p[:, 0], np.ones((4, 3)), np.ones(4)),
                             ValueError, ["X", "(N, 2)"]),
    "decision_boundary_y": (lambda: plot.plot_decision_boundary(lambda p: p[:, 0], np.ones((4, 2)), np.ones(3)),
                            ValueError, ["X", "y", "same length"]),
    "show_images_2d": (lambda: plot.show_images(np.ones((4, 4))), ValueError, ["images", "(N, H, W)"]),
    "show_images_titles": (lambda: plot.show_images(np.ones((2, 4, 4)), titles=["a"]), ValueError,
                           ["titles", "one title per image"]),
}

LINEAR = nn.Linear(4, 3)
DEPLOY = {
    "check_texts_single_string": (lambda: deploy.check_texts("good"), TypeError, ["texts", "list of strings"]),
    "check_texts_too_many": (lambda: deploy.check_texts(["a", "b"], max_texts=1), ValueError, ["texts", "at most 1"]),
    "check_texts_too_long": (lambda: deploy.check_texts(["abc"], max_chars=2), ValueError, ["texts[0]", "at most 2"]),
    "save_folder_not_a_classifier": (lambda: deploy.save_model_folder(LINEAR, None, "x", ["a"]), TypeError,
                                     ["model", "BertForSequenceClassification"]),
    "course_to_hf_name_not_str": (lambda: deploy.course_to_hf_name(3), TypeError, ["name", "str"]),
    "fine_tune_zero_steps": (lambda: deploy.fine_tune_steps(LINEAR, None, 0, 2, 1e-3, 0), ValueError,
                             ["steps", ">= 1"]),
    "lora_not_linear": (lambda: lora.LoRALinear(nn.Conv1d(2, 2, 1)), TypeError, ["base", "Linear"]),
    "lora_rank_too_high": (lambda: lora.LoRALinear(LINEAR, r=4), ValueError, ["r=4", "min(in_features"]),
    "lora_unknown_target": (lambda: lora.add_lora(nn.Sequential(LINEAR), targets=("query",)), ValueError,
                            ["query", "accepted"]),
    "quantize_axis": (lambda: quantize.quantize_per_channel(torch.ones(2, 2), axis=3), ValueError, ["axis", "None"]),
    "quantize_int_weight": (lambda: quantize.quantize_per_channel(torch.ones(2, 2, dtype=torch.long)), TypeError,
                            ["weight"]),
    "dequantize_float": (lambda: quantize.dequantize(torch.ones(2, 2), torch.ones(2, 1)), TypeError, ["q", "int8"]),
    "quantize_skip_str": (lambda: quantize.quantize_linears(nn.Sequential(LINEAR), skip="x"), TypeError, ["skip"]),
    "dynamic_int8_skip_str": (lambda: quantize.dynamic_int8(nn.Sequential(LINEAR), skip="x"), TypeError, ["skip"]),
    "deploy_exercise_unknown": (lambda: ch09_deployment.exercise_reference("nope"), ValueError,
                                ["name", "error_budget"]),
    "export_float_ids": (lambda: export_.export_onnx(LINEAR, "x.onnx", torch.ones(2, 3)), TypeError,
                         ["example_ids", "integer"]),
    "onnx_session_missing": (lambda: export_.onnx_session("no/such.onnx"), FileNotFoundError, ["export_onnx"]),
    "serve_missing_folder": (lambda: serve.running_service("no/such/folder").__enter__(), FileNotFoundError,
                             ["config.json"]),
    "load_test_zero_requests": (lambda: serve.load_test("http://127.0.0.1:1", ["a"], requests=0), ValueError,
                                ["requests", ">= 1"]),
}

TABLES = {"regression": REGRESSION, "metrics": METRICS, "cnn": CNN, "rnn": RNN, "attention": ATTENTION,
          "seq2seq": SEQ2SEQ, "bert": BERT, "train": TRAIN, "data": DATA, "profile+device": PROFILE_DEVICE,
          "check+plot": CHECK_PLOT, "deploy": DEPLOY}


@pytest.mark.parametrize("fn, exc, words", [case for module, table in TABLES.items() for case in cases(module, table)])
def test_bad_call_is_refused_clearly(fn, exc, words):
    """Test ids read ``module-case``, e.g. ``-k attention-mha_causal_as_padding``."""
    assert_refused(fn, exc, words)


def test_no_bare_assert_in_utils():
    root = pathlib.Path(__file__).resolve().parents[1] / "utils"
    offenders = [f"{path.relative_to(root)}:{i}" for path in root.rglob("*.py")
                 for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if line.lstrip().startswith("assert ")]
    assert offenders == []


# ----------------------------------------------------------------------- nothing half-applied on failure
def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model, before):
    after = model.state_dict()
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert torch.equal(after[k], v), f"{k} changed although the call failed"


def bert_checkpoint(**sizes):
    """A Hugging Face-named state dict of a tiny BERT with ``sizes`` changed."""
    source = B.BertModel(B.BertConfig(**{**tiny, **sizes}))
    reverse = {v: k for k, v in bert_interop.HF_BLOCK_NAMES.items()}
    state = {}
    for name, tensor in source.state_dict().items():
        parts = name.split(".")
        if name.startswith("encoder.layer."):
            inner, leaf = ".".join(parts[3:-1]), parts[-1]
            name = ".".join(parts[:3]) + "." + reverse[inner] + "." + leaf
        state["bert." + name] = tensor
    return state


@pytest.mark.parametrize("sizes, says", [
    (dict(intermediate_size=48), "shapes differ"),
    (dict(num_hidden_layers=3), "no place in the model"),        # a deeper checkpoint into a 2-layer model
    (dict(num_hidden_layers=1), "not in the checkpoint"),        # a shallower one: a layer would stay random
])
def test_failed_bert_load_changes_nothing(sizes, says):
    target = B.BertModel(B.BertConfig(**tiny))
    before = snapshot(target)
    with pytest.raises(ValueError, match=says) as info:
        bert_interop.load_hf_weights(target, bert_checkpoint(**sizes))
    assert "nothing was copied" in str(info.value)
    assert_unchanged(target, before)


def test_bert_load_fits_and_partial_load_needs_strict_false(capsys):
    target = B.BertModel(B.BertConfig(**tiny))
    report = bert_interop.load_hf_weights(target, bert_checkpoint())
    assert report["missing"] == [] and len(report["loaded"]) == len(target.state_dict())
    deeper = B.BertModel(B.BertConfig(**{**tiny, "num_hidden_layers": 3}))
    layer2 = deeper.encoder.layer[2].attention.query.weight.clone()
    report = bert_interop.load_hf_weights(deeper, bert_checkpoint(), strict=False)
    assert "encoder.layer.2.attention.query.weight" in report["missing"]
    assert torch.equal(deeper.encoder.layer[2].attention.query.weight, layer2)   # stayed as initialised
    assert "stayed randomly initialised" in capsys.readouterr().out
    classifier = B.BertForSequenceClassification(B.BertConfig(**tiny))
    report = bert_interop.load_hf_weights(classifier, bert_checkpoint())         # strict: a new head is expected
    assert set(report["missing"]) == {"classifier.weight", "classifier.bias"}


def test_failed_train_load_weights_changes_nothing(tmp_path):
    path = train.save_weights(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)), tmp_path / "w.safetensors")
    wider = nn.Sequential(nn.Linear(3, 5), nn.Linear(5, 2))
    before = snapshot(wider)
    with pytest.raises(ValueError, match="different shapes") as info:
        train.load_weights(wider, path)
    assert "0.weight" in str(info.value) and "nothing was loaded" in str(info.value)
    assert_unchanged(wider, before)


def test_fit_resuming_another_models_checkpoint_changes_nothing(tmp_path):
    checkpoint = tmp_path / "run.pt"
    train.fit(nn.Linear(3, 2), loader, ce, torch.optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1), 1,
              checkpoint=checkpoint, progress=False)
    other = nn.Linear(3, 4)
    before = snapshot(other)
    with pytest.raises(ValueError, match="belongs to another model"):
        train.fit(other, loader, nn.MSELoss(), torch.optim.SGD(other.parameters(), lr=0.1), 2,
                  checkpoint=checkpoint, progress=False)
    assert_unchanged(other, before)


def test_failed_fit_writes_no_event_file(tmp_path):
    log_dir = tmp_path / "runs" / "a"
    with pytest.raises(ValueError, match="0 batches"):
        train.fit(model, empty, ce, sgd, 1, log_dir=log_dir, progress=False)
    bad_model = nn.Linear(5, 2)                                                   # inputs have 3 features
    with pytest.raises(RuntimeError):
        train.fit(bad_model, loader, ce, torch.optim.SGD(bad_model.parameters(), lr=0.1), 1, log_dir=log_dir,
                  progress=False)
    assert not log_dir.exists()
    train.fit(nn.Linear(3, 2), loader, ce, torch.optim.SGD(model.parameters(), lr=0.1), 1, log_dir=log_dir,
              progress=False)
    assert any(p.name.startswith("events.out.tfevents") for p in log_dir.iterdir())   # and one when it works


def test_cache_path_that_is_a_file_creates_nothing(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="is a file") as info:
        data.download("thing", ["https://example.invalid/x.bin"], "0" * 64, cache_dir=blocker)
    assert "cache_dir" in str(info.value) and "COURSE_CACHE" in str(info.value)
    with pytest.raises(ValueError, match="is a file"):
        data.download("thing", ["https://example.invalid/x.bin"], "0" * 64, cache_dir=blocker / "sub")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"] and blocker.read_text() == "not a folder"


def test_cache_under_read_only_folder_creates_nothing(tmp_path, monkeypatch):
    read_only = tmp_path / "shared"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(data.os, "access", lambda p, mode: False if pathlib.Path(p) == read_only
                        else real_access(p, mode))  # root may write anywhere: pretend the folder is read-only
    with pytest.raises(PermissionError, match="read-only") as info:
        data.download("thing", ["https://example.invalid/x.bin"], "0" * 64, cache_dir=read_only / "new" / "cache")
    assert "COURSE_CACHE" in str(info.value) and "place it exactly" not in str(info.value)
    assert list(read_only.iterdir()) == []


def test_a_verified_file_in_a_read_only_cache_is_still_used(tmp_path, monkeypatch):
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "x.bin").write_bytes(b"")
    monkeypatch.setattr(data.os, "access", lambda p, mode: False)
    empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert data.download("thing", ["https://example.invalid/x.bin"], empty_sha, cache_dir=folder) == folder / "x.bin"


def test_override_types_follow_the_profile(monkeypatch):
    monkeypatch.setenv("COURSE_OVERRIDES", json.dumps({"lr": 1, "sizes": [8, 16], "name": "x"}))
    cfg = profile.pick(dict(lr=0.1, sizes=(4, 8), name="a"), dict(lr=0.3, sizes=(64, 128), name="b"), "quick")
    assert cfg.lr == 1 and cfg.sizes == (8, 16) and cfg.name == "x"              # int for a float; list -> tuple


def test_amp_override_takes_a_dtype_name_or_a_switch(monkeypatch):
    """CFG.amp is True/False in the profiles but also accepts the dtype by name (the offline full-profile test
    trains under bfloat16 this way); anything else is refused with the accepted values."""
    for value in ("bfloat16", "float16", False, True, None):
        monkeypatch.setenv("COURSE_OVERRIDES", json.dumps({"amp": value}))
        assert profile.pick(dict(amp=False), dict(amp=True), "quick").amp == value
    monkeypatch.setenv("COURSE_OVERRIDES", json.dumps({"amp": "half"}))
    with pytest.raises(TypeError, match='amp=.half.*"bfloat16"'):
        profile.pick(dict(amp=False), dict(amp=True), "quick")


def test_padding_mask_with_batch_equal_to_length_still_works():
    x = torch.randn(4, 4, D)
    lengths = torch.tensor([4, 2, 3, 1])
    padding = torch.arange(4)[None] < lengths[:, None]                            # B == T, not triangular
    torch.testing.assert_close(mha(x, mask=padding), mha(x, mask=padding[:, None, None, :]))
    causal = A.causal_mask(4)[None, None]
    assert mha(x, mask=causal).shape == (4, 4, D)


def test_failed_keras_copies_change_nothing():
    keras_small = bert_keras.KerasBertModel(B.BertConfig(**tiny))
    keras_small(np.ones((1, 2), dtype="int64"))
    before = [w.copy() for w in keras_small.get_weights()]
    deeper = B.BertModel(B.BertConfig(**{**tiny, "num_hidden_layers": 3}))
    with pytest.raises(ValueError, match="num_hidden_layers: PyTorch 3, Keras 2"):
        bert_keras.copy_bert_to_keras(deeper, keras_small)
    for a, b in zip(before, keras_small.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    small_cfg, wide_cfg = cnn.LeNetConfig(), cnn.LeNetConfig(hidden=(64, 32))
    keras_lenet = cnn.build_keras_lenet(small_cfg)
    before = [w.copy() for w in keras_lenet.get_weights()]
    with pytest.raises(ValueError, match="nothing was copied"):
        cnn.copy_lenet_to_keras(cnn.LeNet(wide_cfg), keras_lenet)
    for a, b in zip(before, keras_lenet.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_count_of_bad_calls_per_module():
    counts = {name: len(table) for name, table in TABLES.items()}
    print("bad calls per module:", counts, "total", sum(counts.values()))
    assert all(n >= 6 for n in counts.values())
