"""``miseg train``: train a model and store it with the config that reproduces it."""

from __future__ import annotations

import argparse
import os

from miseg.cli.common import config_from_args, model_file, select_cases
from miseg.cli.config import build_pipeline, dump_config, model_config_path, save_config, split_fraction

__all__ = ["run_train", "history_path"]


def history_path(model_path: str) -> str:
    """``run/model.keras`` -> ``run/model.history.csv`` (per-epoch loss and metrics)."""
    return os.path.splitext(model_path)[0] + ".history.csv"


def run_train(args: argparse.Namespace, explicit: set[str]) -> int:
    """Train on the labelled cases; write ``<model>``, ``<model>.config.yaml``,
    ``<model>.manifest.json`` and the history."""
    config = config_from_args(args, explicit)
    pipeline = build_pipeline(config, training=True, with_network=not args.dry_run)
    config = pipeline.config
    if args.save_config:
        save_config(config, args.save_config)
        print(f"Config written to {args.save_config}")
    if args.dry_run:
        print(dump_config(config), end="")
        return 0

    training = config["training"]
    cases = select_cases(pipeline.data_io, training.get("cases"), labelled=True)
    train_cases, val_cases = split_fraction(cases, float(training.get("validation_fraction") or 0.0),
                                            int(training["seed"]))
    network = pipeline.network
    network.run_config = config  # recorded in <model>.manifest.json
    network.hash_inputs = bool(getattr(args, "hash_inputs", False))
    print(f"Training on {len(train_cases)} case(s)"
          + (f", validating on {len(val_cases)}" if val_cases else "")
          + f": {training['epochs']} epoch(s), patch {config['preprocessing']['patch_shape']}, "
            f"seed {training['seed']}")
    if val_cases:
        history = network.evaluate(train_cases, val_cases, epochs=int(training["epochs"]),
                                   iterations=training.get("iterations"))
    else:
        history = network.train(train_cases, epochs=int(training["epochs"]), iterations=training.get("iterations"))

    path = network.dump(model_file(args.output))
    config_path = save_config(config, model_config_path(path))
    import pandas as pd

    table = pd.DataFrame(history.history)
    table.insert(0, "epoch", range(1, len(table) + 1))
    table.to_csv(history_path(path), index=False)
    last = {k: v[-1] for k, v in history.history.items() if v}
    scores = ", ".join(f"{k} {v:.4f}" for k, v in last.items())
    print(f"Model written to {path} (config: {config_path}); last epoch: {scores}")
    return 0
