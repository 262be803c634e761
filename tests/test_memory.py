"""Peak memory of a piece of work (randwire.training.memory) and of a training step (metrics.json)."""

import pytest
import torch
from helpers import TINY

from randwire.training.memory import CPUHeapPeak, cpu_heap_available, peak_memory_mb
from randwire.training.run import train

pytestmark = pytest.mark.skipif(not cpu_heap_available(), reason="CPU heap measurement needs glibc >= 2.33")


def test_cpu_heap_peak_sees_a_temporary_and_not_what_was_there_before():
    before = torch.ones(4 * 2**20)  # 16 MiB that exist before the measured work
    mib = 2**20 // 4

    def work():
        a = torch.ones(10 * mib)  # 10 MiB, freed at once
        del a
        b = torch.ones(3 * mib)  # then 3 MiB
        return b

    peak = peak_memory_mb(work, "cpu")
    assert 10 <= peak < 12  # the 10 MiB temporary, not the 16 MiB before, not 10 + 3
    with CPUHeapPeak() as probe:
        before.add(1)  # one 16 MiB result
    assert 16 <= probe.peak / 2**20 < 18


def test_training_step_memory_is_reported_per_network_and_grows_with_width(compose_cfg, tmp_path):
    peaks = []
    for c in (8, 32):
        cfg = compose_cfg(
            *TINY,
            f"regime.c={c}",
            "+trainer.limit_train_batches=3",
            "+trainer.limit_val_batches=1",
            run_dir=tmp_path / f"c{c}",
        )
        metrics = train(cfg)
        assert metrics["peak_train_memory_kind"] == "cpu_heap_step_peak"
        peaks.append(metrics["peak_train_memory_mb"])
    # activations scale with C (4x); weights/gradients with C^2: at least 3x more for the wider network
    assert 0 < peaks[0] and peaks[1] > 3 * peaks[0]
