"""Single-image deraining (ESDNet).

Data: ``<root>/<split>/{input,target}`` with identical names (ESDNet's Rain12/100/200/1200
folders; Rain100/200 ``rain-<n>``/``norain-<n>`` names are recognised too). Without
``data.root`` a small generated set is used (``builtin`` below): synthetic rain streaks over
real-photo crops for training; held-out real photographs at light, medium and heavy rain for
testing, and the Middlebury motorcycle scene as a second test split.

Metric protocol: PSNR and SSIM on the Y channel of YCbCr with 4 border pixels cropped,
as ESDNet's evaluation.py (``Test_Y=True``, ``crop_border=4``).
"""
from restoration.data import sources
from restoration.data.degradations import add_rain
from restoration.data.synthetic import COMMON_OPTIONS, PAIRED_OPTIONS, BuiltinData, Option, sample_name, test_source
from restoration.engine.task import BenchmarkSuite, ModelSpec, PairedImageTask
from restoration.registry import TASKS

EARLIER_PRESETS = ("light", "heavy", "mixed")  # the earlier sampling, without severities


def rainy_pair(rng, split, i, opt):
    """Built-in image ``i`` of ``split``: {input/<stem>.png, target/<stem>.png}
    (``naming='rain200'``: input/rain-<n>.png, target/norain-<n>.png)."""
    graded = opt["preset"] not in EARLIER_PRESETS
    level, stem = sample_name(split, i, graded)
    if split == "train":
        size = int(opt["train_size"])
        clean = sources.clean_image(rng, size, size, opt["procedural"], sources.photo_pool("train", opt["clean_dir"]))
    elif test_source(split, opt) == "photos":
        clean = sources.heldout_photo(rng, i, opt["test_size"])
    else:  # held-out real scene: a crop of either Middlebury view
        view = "left" if rng.random() < 0.5 else "right"
        clean = sources.as_float(sources.motorcycle_crops(rng, opt["test_size"], i)[view])
    rainy = add_rain(rng, clean, sources.severity_value(rng, level, opt["clean_share"]) if graded else opt["preset"])
    if opt["naming"] == "rain200":
        return {f"input/rain-{i + 1}.png": rainy, f"target/norain-{i + 1}.png": clean}
    return {f"input/{stem}.png": rainy, f"target/{stem}.png": clean}


BUILTIN = BuiltinData(
    sampler=rainy_pair,
    # 24 test images: 8 held-out photographs x 3 severities
    counts=(400, 24),
    options={**{k: COMMON_OPTIONS[k] for k in PAIRED_OPTIONS},
             "preset": Option("range", "rain: 'range' (every severity, light to heavy, plus nearly clean inputs) "
                                       "or the earlier presets 'light' (Rain200L-like), 'heavy' (Rain200H-like), "
                                       "'mixed' (either per image)", choices=("range",) + EARLIER_PRESETS),
             "naming": Option("esdnet", "derain file names: 'esdnet' (identical names) or 'rain200' "
                                        "(rain-<n>.png -> norain-<n>.png)", choices=("esdnet", "rain200"))},
    seed_id=1,  # the id every earlier set was seeded with: the same pixels
    layout="<out>/{train,test}/{input,target} (ESDNet; --naming rain200: rain-<n>.png -> norain-<n>.png)")


@TASKS.register("derain")
class Derain(PairedImageTask):
    name = "derain"
    default_config = "derain/esdnet_cpu.yaml"
    y_channel = True
    crop_border = 4
    builtin = BUILTIN
    # tools/benchmark.py: ESDNet-tiny and its ANN twin (an epoch is 50 batches of 8)
    benchmark_suite = BenchmarkSuite(
        models=(ModelSpec("esdnet_tiny", "SNN", "derain/esdnet_cpu.yaml"),
                ModelSpec("esdnet_tiny_ann", "ANN twin", "derain/esdnet_cpu.yaml")),
        stated_size=256,
        budgets={"quick": {"patch_size": 64, "batch_size": 8, "epochs": 3, "steps": 50}, "full": None})
