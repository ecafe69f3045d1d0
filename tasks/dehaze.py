"""Single-image dehazing (DehazeSNN, AECR-Net).

Data: ``<root>/<split>/{hazy,GT}`` (DehazeSNN's RESIDE-6K, RS-HAZE, ITS/OTS, SOTS folders;
RESIDE's ``<id>_<k>`` -> ``<id>`` naming is recognised). Without ``data.root`` a small
generated set is used: the atmospheric scattering model over photo crops for training,
the held-out Middlebury motorcycle scene hazed with its true depth for testing.

Metric protocol: PSNR and SSIM on RGB, no border crop (DehazeSNN's test.py).
The AECR-Net contrastive loss term needs the degraded input, which ``forward`` passes
in ``extras['input']``.
"""
from restoration.engine.task import BenchmarkSuite, ModelSpec, PairedImageTask
from restoration.registry import TASKS


@TASKS.register("dehaze")
class Dehaze(PairedImageTask):
    name = "dehaze"
    default_config = "dehaze/dehazesnn_s_cpu.yaml"
    y_channel = False
    crop_border = 0
    # tools/benchmark.py: DehazeSNN-S, its ANN twin and AECR-Net. The quick budget keeps the
    # recipes' learning rates (1e-3, tuned for short runs); an epoch is 100 batches of 4.
    benchmark_suite = BenchmarkSuite(
        models=(ModelSpec("dehazesnn_s", "SNN", "dehaze/dehazesnn_s_cpu.yaml"),
                ModelSpec("dehazesnn_s_ann", "ANN twin", "dehaze/dehazesnn_s_cpu.yaml"),
                ModelSpec("aecrnet", "ANN baseline", "dehaze/aecrnet_cpu.yaml")),
        stated_size=256,
        budgets={"quick": {"patch_size": 64, "batch_size": 4, "epochs": 2, "steps": 75}, "full": None})
