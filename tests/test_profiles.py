import pytest
import torch

from coursekit.book import profiles
from coursekit.util.device import select_device


@pytest.fixture(autouse=True)
def no_env_override(monkeypatch):
    monkeypatch.delenv(profiles.PROFILE_ENV, raising=False)


def test_auto_picks_full_with_cuda_else_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profiles.get_profile("auto").name == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert profiles.get_profile("auto").name == "full"


def test_environment_overrides_the_notebook(monkeypatch):
    monkeypatch.setenv(profiles.PROFILE_ENV, "smoke")
    assert profiles.get_profile("cpu").name == "smoke"
    assert profiles.resolve_name("cpu", use_env=False) == "cpu"


def test_unknown_profile_names_the_choices(monkeypatch):
    with pytest.raises(ValueError, match="Choose one of: auto, smoke, cpu, full"):
        profiles.get_profile("laptop")
    monkeypatch.setenv(profiles.PROFILE_ENV, "gpu")
    with pytest.raises(ValueError, match=r"\$COURSEKIT_PROFILE"):
        profiles.get_profile("cpu")


def test_profiles_scale_up():
    smoke, cpu, full = (profiles.get_profile(n) for n in profiles.NAMES)
    assert smoke.train_size < 60_000 and cpu.train_size is None
    assert smoke.epochs <= cpu.epochs <= full.epochs
    assert (smoke.dataset, cpu.dataset, full.dataset) == ("mnist", "mnist", "cifar10")
    assert cpu.choose(smoke=1, cpu=2, full=3) == 2


def test_overrides_and_device():
    assert profiles.get_profile("smoke", epochs=5).epochs == 5
    assert select_device("cpu") == torch.device("cpu")
    assert select_device().type in {"cpu", "cuda", "mps"}
