"""Assignment 07: a small classifier on data made in code, and the runs that compare plain
training, label smoothing and mixup, early stopping, and an averaged (EMA) model.

The runs take the student's functions as arguments (the loss, mixup, the evaluation, early
stopping, the EMA update, the batch-norm refresh), so what they measure is what the
student's code does. Every run is seeded: the methods share the data, the initial weights and
the order of the batches of each seed (paired comparisons).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .training import progress

NUM_CLASSES = 4
NUM_FEATURES = 10
LABEL_NOISE = 0.2  # share of training labels replaced by a random class


def make_data(seed: int, n_train: int = 256, n_val: int = 1024, *, num_classes: int = NUM_CLASSES,
              num_features: int = NUM_FEATURES, spread: float = 2.2, label_noise: float = LABEL_NOISE):
    """Gaussian classes in ``num_features`` dimensions: class ``k`` has its mean at a random
    point at distance ``spread`` from the origin and unit variance around it, so the classes
    overlap. A share ``label_noise`` of the *training* labels is replaced by a uniformly drawn
    class (the validation labels are clean). Returns ``(x_train, y_train, x_val, y_val)``."""
    g = torch.Generator().manual_seed(1000 + seed)
    means = torch.randn(num_classes, num_features, generator=g)
    means = spread * means / means.norm(dim=1, keepdim=True)

    def draw(n):
        y = torch.randint(num_classes, (n,), generator=g)
        return means[y] + torch.randn(n, num_features, generator=g), y

    x_train, y_train = draw(n_train)
    x_val, y_val = draw(n_val)
    flip = torch.rand(n_train, generator=g) < label_noise
    y_train = torch.where(flip, torch.randint(num_classes, (n_train,), generator=g), y_train)
    return x_train, y_train, x_val, y_val


def classifier(seed: int, num_features: int = NUM_FEATURES, num_classes: int = NUM_CLASSES,
               hidden: int = 128) -> nn.Sequential:
    """``Linear → BatchNorm1d → ReLU`` twice, then ``Linear`` to the logits, initialised from
    ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(num_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def batches(x, y, batch_size: int, epoch: int, seed: int):
    """The mini-batches of one epoch, in an order fixed by ``seed`` and ``epoch``."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 10_007 + epoch))
    return [(x[idx], y[idx]) for idx in order.split(batch_size)]


def train_epoch(model, optimizer, x, y, *, method: str, loss_fn=None, mix_fn=None, eps: float = 0.1,
                alpha: float = 0.4, batch_size: int = 32, epoch: int = 0, seed: int = 0,
                after_step=None) -> None:
    """One epoch of ``method``: ``"plain"`` (cross-entropy), ``"smoothing"``
    (``loss_fn(logits, y, eps)``) or ``"mixup"`` (inputs and targets mixed by
    ``mix_fn(x, y, alpha, K, generator)``, soft-target cross-entropy). ``after_step(model)``
    runs after every optimiser step (an EMA update)."""
    model.train()
    g = torch.Generator().manual_seed(seed * 7919 + epoch)
    for xb, yb in batches(x, y, batch_size, epoch, seed):
        logits_target = None
        if method == "plain":
            loss = F.cross_entropy(model(xb), yb)
        elif method == "smoothing":
            loss = loss_fn(model(xb), yb, eps)
        elif method == "mixup":
            x_mix, y_soft = mix_fn(xb, yb, alpha, NUM_CLASSES, generator=g)
            logits_target = model(x_mix)
            loss = -(y_soft * F.log_softmax(logits_target, dim=1)).sum(dim=1).mean()
        else:
            raise ValueError(f"unknown method {method!r}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step(model)


def _metrics(evaluate, ece_fn, model, x, y) -> dict:
    out = dict(evaluate(model, x, y))
    with torch.no_grad():
        model.eval()
        probs = F.softmax(model(x), dim=1)
    out["ece"] = float(ece_fn(probs, y)) if ece_fn is not None else float("nan")
    return {k: float(v) for k, v in out.items()}


METHODS = ("plain", "smoothing", "mixup")


def compare(loss_fn, mix_fn, evaluate, ece_fn, *, seeds: int = 4, epochs: int = 30, eps: float = 0.1,
            alpha: float = 0.4, lr: float = 3e-3, show_progress: bool = False) -> dict:
    """Train the same classifier plainly, with label smoothing and with mixup on every seed
    (same data, initial weights and batch order per seed). Returns ``{"methods": METHODS,
    "accuracy" | "loss" | "confidence" | "ece": tensors (3, seeds)}`` measured on the
    validation set after the last epoch, and ``"curves"``: the validation loss after every epoch,
    a tensor ``(3, seeds, epochs)``."""
    result = {k: torch.zeros(len(METHODS), seeds, dtype=torch.float64)
              for k in ("accuracy", "loss", "confidence", "ece")}
    result["curves"] = torch.zeros(len(METHODS), seeds, epochs, dtype=torch.float64)
    jobs = [(s, m) for s in range(seeds) for m in range(len(METHODS))]
    for s, m in progress(jobs, show_progress, desc="training"):
        x, y, xv, yv = make_data(s)
        model = classifier(s)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for epoch in range(epochs):
            train_epoch(model, opt, x, y, method=METHODS[m], loss_fn=loss_fn, mix_fn=mix_fn, eps=eps,
                        alpha=alpha, epoch=epoch, seed=s)
            result["curves"][m, s, epoch] = float(evaluate(model, xv, yv)["loss"])
        for k, v in _metrics(evaluate, ece_fn, model, xv, yv).items():
            result[k][m, s] = v
    result["methods"] = METHODS
    return result


def early_stopping_run(EarlyStopping, evaluate, *, patience: int = 5, min_delta: float = 1e-3, seed: int = 0,
                       max_epochs: int = 60, lr: float = 3e-3) -> dict:
    """Train the plain classifier of ``seed`` until ``EarlyStopping(patience, min_delta).step(val_loss,
    model)`` says stop (or ``max_epochs``), then ``restore(model)``. Returns the validation losses
    after each epoch run (``"val_loss"``, a list), ``"epochs_run"``, ``"patience"``,
    ``"min_delta"``, and the evaluation of the model when it stopped (``"last"``) and once restored
    (``"restored"``)."""
    stopper = EarlyStopping(patience, min_delta=min_delta)
    x, y, xv, yv = make_data(seed)
    model = classifier(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for epoch in range(max_epochs):
        train_epoch(model, opt, x, y, method="plain", epoch=epoch, seed=seed)
        val = float(evaluate(model, xv, yv)["loss"])
        history.append(val)
        if stopper.step(val, model):
            break
    last = {k: float(v) for k, v in evaluate(model, xv, yv).items()}
    stopper.restore(model)
    restored = {k: float(v) for k, v in evaluate(model, xv, yv).items()}
    return {"val_loss": history, "epochs_run": len(history), "patience": patience, "min_delta": min_delta,
            "last": last, "restored": restored}


def ema_run(ema_update, update_bn, evaluate, *, seeds: int = 4, epochs: int = 30, decay: float = 0.995,
            start: int = 5, lr: float = 3e-3, show_progress: bool = False) -> dict:
    """Train the plain classifier of every seed; from epoch ``start`` on (the EMA model is a copy of
    the model then), ``ema_update(ema_model, model, decay)`` follows it after every step. At the
    end, on the validation set: the live model (``live``), the EMA model as it is, with the batch
    norm statistics copied from the live model (``ema``), the same averaged weights with the
    statistics left as they were at the copy (``stale``: what an average that does not copy the
    buffers evaluates with), and the EMA model after ``update_bn(training batches, ema_model)``
    (``ema_bn``). Returns tensors ``(seeds,)``: ``"<model>_loss"`` and ``"<model>_accuracy"``."""
    names = ("live", "ema", "stale", "ema_bn")
    out = {f"{n}_{m}": torch.zeros(seeds, dtype=torch.float64) for n in names for m in ("loss", "accuracy")}
    for s in progress(range(seeds), show_progress, desc="EMA"):
        x, y, xv, yv = make_data(s)
        model = classifier(s)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        ema_model = buffers_then = None
        for epoch in range(epochs):
            if epoch == start:
                ema_model = copy.deepcopy(model)
                for p in ema_model.parameters():
                    p.requires_grad_(False)
                buffers_then = {k: b.clone() for k, b in ema_model.named_buffers()}
            train_epoch(model, opt, x, y, method="plain", epoch=epoch, seed=s,
                        after_step=None if ema_model is None else (lambda m: ema_update(ema_model, m, decay)))
        stale = copy.deepcopy(ema_model)
        stale.load_state_dict({**stale.state_dict(), **buffers_then})
        for name, net in (("live", model), ("ema", ema_model), ("stale", stale)):
            r = evaluate(net, xv, yv)
            out[f"{name}_loss"][s], out[f"{name}_accuracy"][s] = float(r["loss"]), float(r["accuracy"])
        update_bn([xb for xb, _ in batches(x, y, 32, epochs, s)], ema_model)
        r = evaluate(ema_model, xv, yv)
        out["ema_bn_loss"][s], out["ema_bn_accuracy"][s] = float(r["loss"]), float(r["accuracy"])
    return out


def rule_best_epoch(val_loss, min_delta: float = 0.0) -> int:
    """The epoch (counted from 1) whose weights early stopping keeps for this sequence of
    validation losses: the last improvement, an improvement beating the best so far by more
    than ``min_delta`` (NaN never improves)."""
    best, epoch = math.inf, 0
    for i, v in enumerate(val_loss, start=1):
        if not math.isnan(v) and v < best - min_delta:
            best, epoch = v, i
    return epoch
