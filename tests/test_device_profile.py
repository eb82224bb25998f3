import numpy as np
import pytest
import torch

from utils import device, profile


def test_device_auto_is_cpu_or_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    assert device.device_name() == ("cuda" if torch.cuda.is_available() else "cpu")


def test_device_from_env_and_invalid_value(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "CPU")
    assert device.device_name() == "cpu"
    monkeypatch.setenv("COURSE_DEVICE", "gpu")
    with pytest.raises(ValueError, match="accepted: auto, cpu, cuda, mps"):
        device.device_name()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_unavailable_device_is_refused():
    with pytest.raises(ValueError, match="not available"):
        device.device_name("cuda")


def test_profile_auto_override_and_invalid(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert profile.current(device="cuda") == "full"
    assert profile.current(device="cpu") == "quick"
    monkeypatch.setenv("COURSE_PROFILE", "full")
    assert profile.current(device="cpu") == "full"
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="accepted: quick, full, auto"):
        profile.current()


def test_pick_returns_the_profile_settings_and_applies_overrides(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "full")
    monkeypatch.delenv("COURSE_OVERRIDES", raising=False)
    assert profile.pick(quick={"epochs": 2}, full={"epochs": 50}).epochs == 50
    monkeypatch.setenv("COURSE_OVERRIDES", '{"epochs": 1}')
    assert profile.pick(quick={"epochs": 2}, full={"epochs": 50}).epochs == 1
    monkeypatch.setenv("COURSE_OVERRIDES", '{"epoch": 1}')
    with pytest.raises(ValueError, match="unknown keys"):
        profile.pick(quick={"epochs": 2}, full={"epochs": 50})
    monkeypatch.setenv("COURSE_OVERRIDES", "epochs=1")
    with pytest.raises(ValueError, match="JSON object"):
        profile.pick(quick={"epochs": 2}, full={"epochs": 50})


def test_pick_requires_the_same_keys():
    with pytest.raises(ValueError, match="only in quick"):
        profile.pick(quick={"epochs": 2, "lr": 0.1}, full={"epochs": 50})


def test_seed_everything_makes_torch_numpy_and_tensorflow_repeat():
    import tensorflow as tf

    def draw():
        return torch.rand(3).numpy(), np.random.rand(3), tf.random.uniform((3,)).numpy()

    device.seed_everything(7)
    first = draw()
    device.seed_everything(7)
    second = draw()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="non-negative int"):
        device.seed_everything(-1)


def test_setup_limits_threads_and_reports(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "quick")
    env = device.setup(seed=3, device="cpu", threads=1)
    assert env.device == torch.device("cpu") and env.profile == "quick" and env.threads == 1
    assert torch.get_num_threads() == 1
    assert set(env.versions) >= {"torch", "tensorflow", "keras"}
    assert "device: cpu | profile: quick" in capsys.readouterr().out
    import tensorflow as tf

    # true float32 on every GPU generation, so that the cross-framework checks hold there too
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert not tf.config.experimental.tensor_float_32_execution_enabled()


def test_torch_threads_sets_and_restores_also_after_an_error():
    before = torch.get_num_threads()
    with device.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"), device.torch_threads(1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"), device.torch_threads(0):
        pass
    assert torch.get_num_threads() == before
