"""DDP through torchrun on CPU (gloo): two processes train a few steps on different
shards and must end with identical weights; only rank 0 writes checkpoints and logs."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

WORKER = textwrap.dedent("""
    import os, sys
    sys.path[:0] = [{tests!r}, {repo!r}]
    import torch
    torch.set_num_threads(1)
    from restoration.engine.log import setup_logger
    from test_engine import ToyData, ToyNet, ToyTask, toy_cfg
    from restoration.engine.trainer import Trainer

    out = {out!r}
    rank = int(os.environ["RANK"])
    setup_logger(os.path.join(out, "run", "train.log"), main=rank == 0)
    torch.manual_seed(100 + rank)   # different init per rank: DDP must broadcast rank 0's
    cfg = toy_cfg(**{{"train.epochs": 2, "data.batch_size": 4, "train.sample_images": 0}})
    tr = Trainer(cfg, ToyTask(), os.path.join(out, "run"), model=ToyNet(), train_set=ToyData(8, 20, patch=12),
                 valid_set=ToyData(2, 16, seed=1))
    assert tr.dist.world_size == 2 and tr.batch_size == 2
    init = {{k: v.clone() for k, v in tr.model.state_dict().items()}}
    tr.fit()
    torch.save({{"final": tr.model.state_dict(), "init": init, "steps": tr.global_step}},
               os.path.join(out, f"rank{{rank}}.pt"))
    # as tools/train.py does: leave together and close gloo before exiting, otherwise one
    # rank can exit while the other's gloo threads still talk to it (SIGABRT, rarely)
    from restoration.engine.distributed import barrier, cleanup
    barrier()
    cleanup()
""")


def test_two_cpu_processes_end_with_identical_weights(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(TESTS), repo=str(REPO), out=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["steps"] == r1["steps"] == 2 * 2  # 8 items / 2 ranks / 2 per rank, 2 epochs
    for k in r0["final"]:
        assert torch.equal(r0["final"][k], r1["final"][k]), k
        assert torch.equal(r0["init"][k], r1["init"][k]), k  # rank 0's weights broadcast at start
    assert any(not torch.equal(r0["init"][k], r0["final"][k]) for k in r0["final"])  # it trained
    run = tmp_path / "run"
    assert (run / "toynet_current.pth").is_file() and (run / "toynet_last.pth").is_file()
    log = (run / "train.log").read_text()
    assert "x2:" in log and log.count("epoch 2/2  loss") == 1  # one writer
