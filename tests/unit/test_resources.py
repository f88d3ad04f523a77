"""Sizes checked against the machine's memory before anything is allocated (autosc/resources.py)."""

import pytest

from autosc import resources
from autosc.errors import AutoscError


def test_available_memory_is_read_from_the_system():
    have = resources.available_memory()
    assert have is None or have > 0


def test_a_batch_is_refused_only_above_the_memory_available(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 64 * 2**20)  # 64 MiB
    per_image = 3 * 32 * 32 * resources.BYTES * resources.FACTOR  # 48 KiB: 1365 images fit
    resources.check_batch("--batch-size", 64 * 2**20 // per_image, (3, 32, 32))
    with pytest.raises(AutoscError) as caught:
        resources.check_batch("--batch-size", 64 * 2**20 // per_image + 1, (3, 32, 32))
    message = str(caught.value)
    assert message.startswith("--batch-size: a batch of 1366 at 3x32x32 needs at least")
    assert "more than the 64.00MiB" in message and "use a batch of at most 1365" in message
    with pytest.raises(AutoscError, match="use a smaller --input-size"):
        resources.check_batch("--input-size", 1, (3, 4096, 4096))  # 768 MiB for one image
    monkeypatch.setattr(resources, "available_memory", lambda: None)  # a system that does not say: no refusal
    resources.check_batch("--batch-size", 10**9, (3, 4096, 4096))
