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


# Test tiers (pytest markers, declared in pyproject.toml): each test gets exactly one, from where it lives, so a new
# test file is in the unit tier unless it is listed here. `./course test --fast` runs `-m unit`.
TIER_OF_FILE = {"test_browser.py": "browser", "test_full_profile.py": "full_profile"}


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        path = pathlib.Path(str(item.fspath))
        own = {m.name for m in item.iter_markers()} & {"unit", "notebooks", "browser", "full_profile", "integration"}
        if own:
            continue  # a test that declares its tier keeps it (e.g. a slow subprocess run marked integration)
        tier = "notebooks" if path.suffix == ".ipynb" else TIER_OF_FILE.get(path.name, "unit")
        item.add_marker(getattr(pytest.mark, tier))
