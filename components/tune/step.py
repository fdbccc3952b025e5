"""The tune step: hyperparameter trials, each a real train run, shown in TensorBoard's HParams dashboard.

Outputs under `out/`: `trials/<trial-NNN>/` (each trial's train output; its
`logs/` is an HParams session with the trial's values, Keras' epoch metrics
under `validation/` and the eval split's metric), `trials/` also holds the
experiment's `hparams_config` (so `tfpipe tensorboard <out>/trials` shows the
table, parallel coordinates and scatter plots), `trials.json`, `trials.html`
and `best.json`. A trial whose values fail (a NaN loss, a module that rejects them)
is recorded as failed with its error and the search goes on; a setting that fails
every trial alike (an unknown key, a metric the run does not report) ends it at
once; a search with no completed trial has no best (the command exits 1, the pipeline's
pick step fails). With `median_stopping`, a trial whose best value so far
is worse than the median of finished trials at the same epoch stops early.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import statistics
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Literal

import keras
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from components.common import io
from components.common.config import ConfigError, TrainConfig, TuneConfig
from components.common.errors import TfpipeError
from components.common.page import escape, page, table
from components.tune import space

log = logging.getLogger("tfpipe.tune")


@dataclass
class Trial:
    id: str
    params: dict
    status: Literal["pending", "completed", "stopped early", "failed"] = "pending"
    metric: float | None = None
    epochs: int = 0
    seconds: float = 0.0
    error: str = ""
    history: list[float] = field(default_factory=list)  # the validation metric per epoch


@dataclass(frozen=True)
class TuneResult:
    out: str
    trials: list[Trial]
    best: Trial | None


def run(cfg: TuneConfig, train: TrainConfig, examples: str, out: str) -> TuneResult:
    cfg.validate(searching=True)
    io.makedirs(f"{out}/trials")
    write_experiment(cfg, f"{out}/trials")
    trials = [Trial(f"trial-{i:03d}", params) for i, params in enumerate(space.trials(cfg))]
    log.info("tune: %d %s trials, %d at a time, optimising %s (%s)", len(trials), cfg.algorithm, cfg.parallel,
             cfg.metric, cfg.goal)
    if cfg.parallel == 1:
        for trial in trials:
            _record(trial, run_trial(cfg, train, examples, out, trial, _finished_histories(trials)))
    else:
        context = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
        with concurrent.futures.ProcessPoolExecutor(cfg.parallel, mp_context=context) as pool:
            futures = {pool.submit(run_trial, cfg, train, examples, out, trial, []): trial for trial in trials}
            for future in concurrent.futures.as_completed(futures):
                _record(futures[future], future.result())
    best = best_trial(cfg, trials)
    io.write_json(f"{out}/trials.json", [asdict(t) for t in trials])
    io.write_json(f"{out}/best.json", {"trial": best.id, "params": best.params, "metric": cfg.metric,
                                       "value": best.metric} if best else {"trial": None})
    io.write_text(f"{out}/trials.html", html(cfg, trials, best))
    return TuneResult(out, trials, best)


def _record(trial: Trial, done: Trial) -> None:
    for name, value in asdict(done).items():
        setattr(trial, name, value)
    log.info("tune: %s %s %s: %s=%s", trial.id, trial.params, trial.status, "metric", trial.metric)


def _finished_histories(trials: list[Trial]) -> list[list[float]]:
    return [t.history for t in trials if t.status in ("completed", "stopped early")]


def run_trial(cfg: TuneConfig, train: TrainConfig, examples: str, out: str, trial: Trial,
              finished: list[list[float]]) -> Trial:
    """One trial, in this process: a train run with the trial's values; a failure of its values is recorded,
    not raised."""
    from components.train import run as train_run

    trial_out = f"{out}/trials/{trial.id}"
    started = time.perf_counter()
    stopper = MedianStopping(cfg, finished)
    try:
        trial_cfg = space.apply(train, space.as_written(cfg, trial.params))
        result = train_run(trial_cfg, examples, trial_out, extra_callbacks=[stopper] if cfg.median_stopping else [])
    except (TfpipeError, tf.errors.OpError) as e:
        # A value that fails (out of range, a NaN loss, a module that rejects it, memory) is a result of the search,
        # not the end of it; anything else is a bug, and ends the search with its traceback.
        trial.status, trial.error = "failed", f"{type(e).__name__}: {e}"
        log.warning("tune: %s failed: %s", trial.id, traceback.format_exception_only(e)[-1].strip())
    else:
        if cfg.metric not in result.metrics:  # the same for every trial: the search stops here, exit 2
            raise ConfigError(f"tune.metric: {cfg.metric!r} is not among the eval metrics {sorted(result.metrics)}")
        trial.metric = float(result.metrics[cfg.metric])
        trial.epochs = result.epochs
        trial.status = "stopped early" if stopper.stopped else "completed"
        trial.history = stopper.values
        _write_session(cfg, f"{trial_out}/logs", trial)
    trial.seconds = time.perf_counter() - started
    return trial


class MedianStopping(keras.callbacks.Callback):
    """The median stopping rule: stop when the best value so far is worse than the median of the finished
    trials' best values up to the same epoch."""

    def __init__(self, cfg: TuneConfig, finished: list[list[float]]):
        super().__init__()
        self.key, self.maximize = f"val_{cfg.metric}", cfg.goal == "maximize"
        self.min_epochs, self.finished = cfg.median_stopping_min_epochs, finished
        self.values: list[float] = []
        self.stopped = False

    def on_epoch_end(self, epoch, logs=None):
        if logs and self.key in logs:
            self.values.append(float(logs[self.key]))
        best = max if self.maximize else min
        peers = [best(h[:epoch + 1]) for h in self.finished if len(h) > epoch]
        if epoch + 1 < self.min_epochs or not peers or not self.values:
            return
        median, mine = statistics.median(peers), best(self.values)
        if (mine < median) if self.maximize else (mine > median):
            self.stopped = True
            self.model.stop_training = True


def write_experiment(cfg: TuneConfig, root: str) -> None:
    """The HParams experiment (the search space and the metrics to show) at the root of the trials' logs."""
    with tf.summary.create_file_writer(root).as_default():
        hp.hparams_config(hparams=list(space.hparams(cfg).values()), metrics=[
            hp.Metric(f"eval_{cfg.metric}", display_name=f"eval {cfg.metric}"),
            hp.Metric(f"epoch_{cfg.metric}", group="validation", display_name=f"validation {cfg.metric}"),
            hp.Metric("epoch_loss", group="validation", display_name="validation loss")])


def _write_session(cfg: TuneConfig, logdir: str, trial: Trial) -> None:
    hparams = space.hparams(cfg)
    with tf.summary.create_file_writer(logdir).as_default():
        hp.hparams({hparams[k]: v for k, v in trial.params.items()}, trial_id=trial.id)
        tf.summary.scalar(f"eval_{cfg.metric}", trial.metric, step=0)


def best_trial(cfg: TuneConfig, trials: list[Trial]) -> Trial | None:
    """The completed trial with the best metric (trials stopped early or failed do not count)."""
    scored = [t for t in trials if t.metric is not None and t.status == "completed"]
    if not scored:
        return None
    return (max if cfg.goal == "maximize" else min)(scored, key=lambda t: t.metric)


def html(cfg: TuneConfig, trials: list[Trial], best: Trial | None) -> str:
    """The trials as a table, best first."""
    keys = sorted(cfg.space)
    ordered = sorted(trials, key=lambda t: (t.metric is None, -(t.metric or 0) if cfg.goal == "maximize"
                                            else (t.metric or 0)))
    return page("tfpipe tuning", [
        "<h1>Hyperparameter search</h1>",
        f"<p>{len(trials)} {escape(cfg.algorithm)} trials, optimising eval <b>{escape(cfg.metric)}</b> "
        f"({escape(cfg.goal)}). Best: <b>{escape(best.id) if best else 'none'}</b>.</p>",
        table(["trial", *keys, cfg.metric, "status", "epochs", "seconds", "error"],
              [[t.id, *(t.params[k] for k in keys), t.metric, t.status, t.epochs, round(t.seconds, 1), t.error]
               for t in ordered]),
    ])
