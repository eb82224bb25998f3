"""The bench drops progress-bar widgets from saved notebooks (their saved text is a bar frozen at 0%)."""
import nbformat

from utils.course.bench import WIDGET_VIEW, drop_frozen_widgets


def test_drop_frozen_widgets_keeps_everything_else():
    cell = nbformat.v4.new_code_cell("fit(...)")
    bar = nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "x"},
                                                       "text/plain": "training:   0%|          | 0/10"})
    printed = nbformat.v4.new_output("stream", name="stdout", text="test MAE 12.95\n")
    figure = nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"})
    cell.outputs = [bar, printed, figure]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# title"), cell])
    assert drop_frozen_widgets(nb) == 1
    assert cell.outputs == [printed, figure]
    assert drop_frozen_widgets(nb) == 0
