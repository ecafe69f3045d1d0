"""A run stopped after an epoch and resumed ends with the same weights, bit for bit, as
one that never stopped (model, optimiser, schedule, EMA, RNG of the random crops)."""
import torch

from restoration.engine import checkpoint as ckpt_mod
from restoration.engine.checkpoint import load_checkpoint
from test_engine import toy_cfg, make_trainer

CFG = dict(**{"train.epochs": 3, "train.accumulation_steps": 2, "train.clip_grad": 0.5, "train.ema_decay": 0.9,
              "data.batch_size": 2, "train.keep_last_epochs": 3})


def uninterrupted(run_dir):
    tr = make_trainer(run_dir, toy_cfg(**CFG))
    tr.fit()
    return tr


def stopped_and_resumed(run_dir, stop_after=1):
    first = make_trainer(run_dir, toy_cfg(**CFG), seed=0)
    first.fit(max_epochs=stop_after)
    del first
    # a fresh process would start from other random weights and RNG states: simulate it
    second = make_trainer(run_dir, toy_cfg(**CFG), seed=123, resume=True)
    assert second.start_epoch == stop_after
    second.fit()
    return second


def same_state(a, b):
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


def test_resume_is_bit_identical(tmp_path):
    a = uninterrupted(tmp_path / "a")
    b = stopped_and_resumed(tmp_path / "b")
    assert same_state(a.model.state_dict(), b.model.state_dict())
    assert same_state(a.ema.state_dict(), b.ema.state_dict())
    assert a.best_score == b.best_score and a.best_epoch == b.best_epoch
    ca, cb = load_checkpoint(tmp_path / "a" / "toynet_last.pth"), load_checkpoint(tmp_path / "b" / "toynet_last.pth")
    assert ca["global_step"] == cb["global_step"] == 3 * 2  # 4 batches of 2 / accumulation 2, 3 epochs
    assert [g["lr"] for g in ca["optimizer"]["param_groups"]] == [g["lr"] for g in cb["optimizer"]["param_groups"]]
    # the epoch checkpoints of both runs agree too
    for e in range(3):
        name = f"toynet_epoch_{e:04d}.pth"
        assert same_state(load_checkpoint(tmp_path / "a" / name)["model"], load_checkpoint(tmp_path / "b" / name)["model"])


def test_the_check_can_fail_without_rng_restore(tmp_path, monkeypatch):
    """Negative control: if the RNG states were not restored the crops would differ."""
    a = uninterrupted(tmp_path / "a")
    monkeypatch.setattr("restoration.engine.trainer.set_rng_state", lambda state: None)
    b = stopped_and_resumed(tmp_path / "b")
    assert not same_state(a.model.state_dict(), b.model.state_dict())
    assert ckpt_mod.set_rng_state is not None
