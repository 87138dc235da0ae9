"""The learning-rate cosine ends where a run ends: at its last step, or at its time box if that comes first."""
import pytest
import pytorch_lightning as pl

from factory.common.training import time_used, trainer_timer, warmup_cosine


def test_warmup_cosine_follows_steps_without_a_time_box():
    assert warmup_cosine(0, 10, 110) == pytest.approx(0.1)
    assert warmup_cosine(10, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(60, 10, 110) == pytest.approx(0.505)
    assert warmup_cosine(110, 10, 110) == pytest.approx(0.01)


def test_warmup_cosine_decays_by_the_time_box_when_it_ends_first():
    # step 20 of 1,000 is early by steps, but half the time box is spent: the factor is the cosine's midpoint
    assert warmup_cosine(20, 10, 1000, used=0.5) == pytest.approx(0.505)
    assert warmup_cosine(20, 10, 1000, used=1.0) == pytest.approx(0.01)
    assert warmup_cosine(900, 10, 1000, used=0.1) == warmup_cosine(900, 10, 1000)  # whichever is further on


def test_time_used_reads_the_trainers_timer_across_a_resume():
    assert time_used(pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)) == 0.0
    trainer = pl.Trainer(max_time={"seconds": 60}, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False)
    assert time_used(trainer) == 0.0
    trainer_timer(trainer).load_state_dict({"time_elapsed": {"train": 30.0}})  # what a resumed checkpoint restores
    assert time_used(trainer) == pytest.approx(0.5)
