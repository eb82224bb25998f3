import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for key, value in {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}.items():
    os.environ.setdefault(key, value)

# torch (and triton, with CUDA wheels) before any test module imports TensorFlow: see utils.device.import_torch_first
from utils.device import import_torch_first  # noqa: E402

import_torch_first()
