"""Single-image deraining (ESDNet).

Data: ``<root>/<split>/{input,target}`` with identical names (ESDNet's Rain12/100/200/1200
folders; Rain100/200 ``rain-<n>``/``norain-<n>`` names are recognised too). Without
``data.root`` a small generated set is used: synthetic rain streaks over photo crops for
training, the held-out Middlebury motorcycle scene for testing.

Metric protocol: PSNR and SSIM on the Y channel of YCbCr with 4 border pixels cropped,
as ESDNet's evaluation.py (``Test_Y=True``, ``crop_border=4``).
"""
from restoration.engine.task import BenchmarkSuite, ModelSpec, PairedImageTask
from restoration.registry import TASKS


@TASKS.register("derain")
class Derain(PairedImageTask):
    name = "derain"
    default_config = "derain/esdnet_cpu.yaml"
    y_channel = True
    crop_border = 4
    # tools/benchmark.py: ESDNet-tiny and its ANN twin (an epoch is 50 batches of 8)
    benchmark_suite = BenchmarkSuite(
        models=(ModelSpec("esdnet_tiny", "SNN", "derain/esdnet_cpu.yaml"),
                ModelSpec("esdnet_tiny_ann", "ANN twin", "derain/esdnet_cpu.yaml")),
        stated_size=256,
        budgets={"quick": {"patch_size": 64, "batch_size": 8, "epochs": 3, "steps": 50}, "full": None})
