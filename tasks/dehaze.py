"""Single-image dehazing (DehazeSNN, AECR-Net).

Data: ``<root>/<split>/{hazy,GT}`` (DehazeSNN's RESIDE-6K, RS-HAZE, ITS/OTS, SOTS folders;
RESIDE's ``<id>_<k>`` -> ``<id>`` naming is recognised). Without ``data.root`` a small
generated set is used (``builtin`` below): the atmospheric scattering model over real-photo
crops with a plausible synthetic depth for training; held-out real photographs at light,
medium and heavy haze for testing, and the Middlebury motorcycle scene hazed with its true
depth as a second test split.

Metric protocol: PSNR and SSIM on RGB, no border crop (DehazeSNN's test.py).
The AECR-Net contrastive loss term needs the degraded input, which ``forward`` passes
in ``extras['input']``.
"""
from restoration.data import sources
from restoration.data.degradations import haze_image, synthetic_depth
from restoration.data.synthetic import COMMON_OPTIONS, PAIRED_OPTIONS, BuiltinData, Option, sample_name, test_source
from restoration.engine.task import BenchmarkSuite, ModelSpec, PairedImageTask
from restoration.registry import TASKS


def hazy_pair(rng, split, i, opt):
    """Built-in image ``i`` of ``split``: {GT/<stem>.png, hazy/<stem>.png} (``naming='reside'``:
    GT/<id>.png and hazy/<id>_<k>.png for k = 1..hazy_per_clean)."""
    graded = opt["beta"] is None  # an explicit beta range is the earlier sampling, without severities
    level, stem = sample_name(split, i, graded)
    if split == "train":
        size = int(opt["train_size"])
        clean = sources.clean_image(rng, size, size, opt["procedural"], sources.photo_pool("train", opt["clean_dir"]))
        depth = synthetic_depth(rng, clean)
    elif test_source(split, opt) == "photos":
        clean = sources.heldout_photo(rng, i, opt["test_size"])
        depth = synthetic_depth(rng, clean)
    else:
        crops = sources.motorcycle_crops(rng, opt["test_size"], i)
        clean = sources.as_float(crops["left"])
        depth = crops["depth"] * rng.uniform(0.9, 1.3)  # true relative depth

    def hazy():
        severity = sources.severity_value(rng, level, opt["clean_share"]) if graded else None
        return haze_image(rng, clean, depth, opt["airlight"], severity, opt["beta"], opt["nonhomogeneous"],
                          opt["noise"])
    if opt["naming"] == "reside":
        files = {f"GT/{i + 1}.png": clean}
        for k in range(int(opt["hazy_per_clean"])):
            files[f"hazy/{i + 1}_{k + 1}.png"] = hazy()
        return files
    return {f"GT/{stem}.png": clean, f"hazy/{stem}.png": hazy()}


BUILTIN = BuiltinData(
    sampler=hazy_pair,
    # 24 test images: 8 held-out photographs x 3 severities
    counts=(400, 24),
    options={**{k: COMMON_OPTIONS[k] for k in PAIRED_OPTIONS},
             "beta": Option(None, "(min, max) scattering coefficient beta drawn uniformly (the earlier sampling, "
                                  "e.g. RESIDE ITS 0.6-1.8; no severities); default: from the severity, 0.2 "
                                  "(thin) to 3.0 (dense)", kind=float, pair=True),
             "airlight": Option((0.7, 1.0), "(min, max) atmospheric light A (RESIDE ITS: 0.7-1.0)", pair=True),
             "nonhomogeneous": Option(0.0, "0 = homogeneous haze; s > 0 lets beta vary smoothly by up to +-s "
                                           "(relative)"),
             "noise": Option(0.0, "maximum std of Gaussian sensor noise added to hazy images (0 = none)"),
             "naming": Option("dehazesnn", "dehaze file names: 'dehazesnn' (identical names) or 'reside' "
                                           "(hazy/<id>_<k>.png -> GT/<id>.png)", choices=("dehazesnn", "reside")),
             "hazy_per_clean": Option(1, "with naming='reside': hazy versions of each clear image")},
    seed_id=0,  # the id every earlier set was seeded with: the same pixels
    layout="<out>/{train,test}/{hazy,GT} (DehazeSNN; --naming reside: hazy/<id>_<k>.png -> GT/<id>.png)")


@TASKS.register("dehaze")
class Dehaze(PairedImageTask):
    name = "dehaze"
    default_config = "dehaze/dehazesnn_s_cpu.yaml"
    y_channel = False
    crop_border = 0
    builtin = BUILTIN
    # tools/benchmark.py: DehazeSNN-S, its ANN twin and AECR-Net. The quick budget keeps the
    # recipes' learning rates (1e-3, tuned for short runs); an epoch is 100 batches of 4.
    benchmark_suite = BenchmarkSuite(
        models=(ModelSpec("dehazesnn_s", "SNN", "dehaze/dehazesnn_s_cpu.yaml"),
                ModelSpec("dehazesnn_s_ann", "ANN twin", "dehaze/dehazesnn_s_cpu.yaml"),
                ModelSpec("aecrnet", "ANN baseline", "dehaze/aecrnet_cpu.yaml")),
        stated_size=256,
        budgets={"quick": {"patch_size": 64, "batch_size": 4, "epochs": 2, "steps": 75}, "full": None})
