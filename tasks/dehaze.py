"""Single-image dehazing (DehazeSNN, AECR-Net).

Data: ``<root>/<split>/{hazy,GT}`` (DehazeSNN's RESIDE-6K, RS-HAZE, ITS/OTS, SOTS folders;
RESIDE's ``<id>_<k>`` -> ``<id>`` naming is recognised). Without ``data.root`` a small
generated set is used: the atmospheric scattering model over photo crops for training,
the held-out Middlebury motorcycle scene hazed with its true depth for testing.

Metric protocol: PSNR and SSIM on RGB, no border crop (DehazeSNN's test.py).
The AECR-Net contrastive loss term needs the degraded input, which ``forward`` passes
in ``extras['input']``.
"""
from restoration.engine.task import PairedImageTask
from restoration.registry import TASKS


@TASKS.register("dehaze")
class Dehaze(PairedImageTask):
    name = "dehaze"
    default_config = "dehaze/dehazesnn_s_cpu.yaml"
    y_channel = False
    crop_border = 0
