"""The plant's device, told without loading torch (issue #17: a plant at rest never imports it)."""

import subprocess
import sys

from factory_agent.device import detect_device


def test_the_device_is_told_without_importing_torch():
    code = ("import sys; from factory_agent.device import detect_device; d = detect_device(); "
            "print(d, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] in ("cpu", "cuda") and out[1] == "False"


def test_no_visible_gpu_means_cpu(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_device() == "cpu"
