"""The monitoring pipeline, scheduled beside the training pipeline (`--pipeline monitoring`):

    1. monitor   the server's request logs (serve.logging.dir), the last `monitor.lookback_windows`
                 complete windows, against the examples the registry's production model was trained
                 on: skew and drift per feature and of the predictions; with `monitor.labels`, the
                 predictions' quality against production's blessed evaluation (findings, HTML report)
    2. retrain   only when a threshold of the kind `monitor.retrain_on` names was crossed: starts the
                 training pipeline where this pipeline runs (its `target` parameter; locally a `tfpipe run`)
    3. summary   always (an exit handler): the run's final state

Nothing is cached: every run reads the logs as they are now.
"""

from kfp import dsl

from components.common.config import RunConfig
from pipelines import ops as ops_lib
from pipelines.targets.cluster import Target


def build(cfg: RunConfig, target: Target | None = None):
    """The pipeline function for this config; `target` (where a retraining starts; None: this machine) is its
    default parameter."""
    target = target or Target()
    ops = ops_lib.make(cfg.pipeline.base_image)

    @dsl.pipeline(name=f"tfpipe-{cfg.name}-monitoring", description=__doc__.split("\n\n")[0])
    def monitoring(config: str = cfg.to_json(indent=None), target: str = target.to_json()):
        summary = ops.summary(config=config).set_caching_options(False)
        with dsl.ExitHandler(summary, name="run"):
            monitored = ops.monitor(config=config).set_caching_options(False)
            with dsl.If(monitored.outputs["Output"] == True, name="retrain"):  # noqa: E712 (a KFP condition)
                ops.retrain(config=config, target=target,
                            findings=monitored.outputs["findings"]).set_caching_options(False)

    return monitoring
