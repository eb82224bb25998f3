"""The course's bench: a saved progress bar shows its final state, not a frozen 0%."""
import nbformat

from utils.course.bench import finish_progress_bars


def test_progress_bar_fallback_text_is_its_final_state():
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output("display_data", data={
        "text/plain": "training:   0%|          | 0/660 [00:00<?, ?batch/s]",
        "application/vnd.jupyter.widget-view+json": {"model_id": "box", "version_major": 2, "version_minor": 0}})
    nb.cells.append(nbformat.v4.new_code_cell("fit(...)", outputs=[out]))
    state = {"box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]}},
             "a": {"model_name": "HTMLModel", "state": {"value": "training:\u2007100%"}},
             "b": {"model_name": "FloatProgressModel", "state": {"value": 660.0, "max": 660.0}},
             "c": {"model_name": "HTMLModel", "state": {"value": "\u2007660/660\u2007[00:01&lt;00:00]"}}}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": state}}
    assert finish_progress_bars(nb) == 1
    assert out["data"]["text/plain"] == "training: 100%|██████████| 660/660 [00:01<00:00]"
    del nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]["b"]  # not a tqdm bar
    out["data"]["text/plain"] = "unchanged"
    assert finish_progress_bars(nb) == 0 and out["data"]["text/plain"] == "unchanged"
