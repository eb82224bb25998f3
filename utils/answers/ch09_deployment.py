"""Answer key of chapter 9 (deployment): each exercise's expected value, computed on its own."""
import torch

EXERCISES = ("lora_params_bert_base", "error_budget")


def exercise_reference(name: str):
    """Expected answer of chapter 9's exercise ``name`` (one of :data:`EXERCISES`), computed independently of the
    learner's code, so the notebook's check cell compares without displaying how the answer is obtained.

    lora_params_bert_base: trainable LoRA numbers (r = 8 on query and value, head not counted) of
    bert-base-uncased, counted on a shapes-only (meta device) model -> int.
    error_budget: the largest quantisation error of any weight in a row whose largest magnitude is 1.27
    (symmetric int8, one scale for the row), measured on 100,001 evenly spaced values -> float.
    """
    if name not in EXERCISES:
        raise ValueError(f"name must be one of {', '.join(EXERCISES)}, got {name!r}")
    if name == "lora_params_bert_base":
        from .. import bert, lora

        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            base = bert.BertForSequenceClassification(bert.BertConfig(), num_labels=2)
            lora.add_lora(base, targets=("query", "value"), r=8, alpha=16, train_also=())
        return lora.trainable_share(base)[0]
    from .. import quantize

    row = torch.linspace(-1.27, 1.27, 100_001)[None]  # every value such a row can hold, finely sampled
    return float((quantize.dequantize(*quantize.quantize_per_channel(row)) - row).abs().max())
