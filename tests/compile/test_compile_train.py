"""`autograd-core train` compiles its training step by default; --eager gives the same run."""

import io

import numpy as np

from autograd_core.app.report import QuietReporter
from autograd_core.app.train import TrainConfig, run
from autograd_core.cli import build_parser


def _train(tmp_path, name, **options):
    config = TrainConfig(out=str(tmp_path / name), **options)
    return run(config, QuietReporter(io.StringIO()))


def test_compiled_and_eager_training_give_the_same_run(tmp_path):
    options = dict(data="iris", hidden=[8, 8], batchnorm=True, dropout=0.2, optimizer="sgd", epochs=6,
                   batch_size=16, patience=0, seed=3)
    compiled = _train(tmp_path, "compiled", **options)
    eager = _train(tmp_path, "eager", eager=True, **options)
    assert len(compiled.history) == len(eager.history) == 6
    for row_c, row_e in zip(compiled.history, eager.history):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert abs(row_c[key] - row_e[key]) <= 1e-12, key
    state_c, state_e = compiled.model.state_dict(), eager.model.state_dict()
    assert set(state_c) == set(state_e)
    for name in state_c:
        np.testing.assert_allclose(np.asarray(state_c[name]), np.asarray(state_e[name]), rtol=0, atol=1e-12, err_msg=name)
    # the weights moved: a run that trained nothing would also agree
    assert compiled.history[-1]["train_loss"] < compiled.history[0]["train_loss"]


def test_the_eager_flag_reaches_the_config():
    parser = build_parser()
    assert TrainConfig.from_args(parser.parse_args(["train", "--eager"])).eager is True
    assert TrainConfig.from_args(parser.parse_args(["train"])).eager is False


def test_a_compiled_run_whose_loss_diverges_stops_before_the_weights_are_spoilt(tmp_path):
    result = _train(tmp_path, "diverging", data="iris", hidden=[8], optimizer="sgd", lr=1e6, epochs=30, patience=0)
    assert result.stopped == "diverged"
    assert len(result.history) < 30
    for name, value in result.model.state_dict().items():
        assert np.isfinite(np.asarray(value)).all(), name
