"""Visible checks for assignment 07-beyond-penalties: ``label_smoothed_cross_entropy``,
``evaluate``, ``mixup``, ``EarlyStopping``, ``ema_update``, ``update_bn``,
``expected_calibration_error`` and the form of the questions' answers (the hidden checks and
the answers live in :mod:`grader.hidden.beyond_penalties`).

The references are PyTorch's own operations where PyTorch has them
(``F.cross_entropy(..., label_smoothing=eps)``, ``torch.optim.swa_utils.AveragedModel`` with
``get_ema_multi_avg_fn``, ``torch.optim.swa_utils.update_bn``), properties where it has not
(mixup: one λ and one permutation recovered from the output; early stopping: scripted metric
sequences), and numbers worked out by hand (calibration error).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ._common import as_number, call, check, expect_raises, fail, forbid_builtins, generator

def _few(t: torch.Tensor) -> str:
    """The first values of a tensor, rounded so that the lab and the judge print them alike."""
    return "[" + ", ".join(f"{v:.3f}" for v in t.detach().flatten()[:3].tolist()) + "]"


# ----------------------------------------------------------------------------- label smoothing

_LS_BUILTINS = ("cross_entropy", "cross_entropy_loss", "nll_loss", "nll_loss_nd", "kl_div")


def _ls_builtins(exercise: str):
    return forbid_builtins(exercise, _LS_BUILTINS,
                           "log_softmax of the logits times the smoothed target, summed over the classes")


def _ls_probe(n=12, k=5, seed=0, dtype=torch.float64, scale=2.0):
    g = generator(seed)
    return scale * torch.randn(n, k, generator=g, dtype=dtype), torch.randint(k, (n,), generator=g)


def _ls_variants(logits, target, eps):
    """Per-sample losses of the known mistakes."""
    k = logits.shape[1]
    logp = F.log_softmax(logits, dim=1)
    onehot = F.one_hot(target, k).to(logits.dtype)
    p = logp.exp()
    out = {
        "k_minus_1": -(((1 - eps) * onehot + eps / (k - 1) * (1 - onehot)) * logp).sum(1),
        "no_true_class": -(((1 - eps) * onehot + eps / k * (1 - onehot)) * logp).sum(1),
        "softmax": -(((1 - eps) * onehot + eps / k) * p).sum(1),
        "ignores_eps": -(onehot * logp).sum(1),
        "eps_keep": -((eps * onehot + (1 - eps) / k) * logp).sum(1),
    }
    return out


_LS_NAMES = {
    "k_minus_1": ("the smoothing mass is spread as eps/(K-1) over the K-1 wrong classes only; PyTorch "
                  "(and this assignment) spread eps/K over all K classes, the true class included, so "
                  "the true class gets 1 - eps + eps/K",
                  "build the target as (1 - eps) * onehot + eps / K (K = logits.shape[1])."),
    "no_true_class": ("the true class gets 1 - eps and the wrong classes eps/K each, so the target sums "
                      "to 1 - eps/K, not 1",
                      "add eps/K to every class, the true one included: (1 - eps) * onehot + eps / K."),
    "softmax": ("the loss multiplies the target by softmax probabilities instead of their logarithm: "
                "cross-entropy is -sum q·log p, and softmax where log-softmax is needed gives a different "
                "(and not even convex) loss",
                "use torch.log_softmax(logits, dim=1) (stable), not torch.softmax."),
    "ignores_eps": ("eps is ignored: this is the plain cross-entropy",
                    "mix the one-hot target with the uniform one: (1 - eps) * onehot + eps / K."),
    "eps_keep": ("eps is used as the weight of the true class: the target is eps·onehot + (1 - eps)/K, "
                 "i.e. eps and 1 - eps swapped",
                 "eps is the share moved to the uniform part: (1 - eps) * onehot + eps / K."),
}


def _ls_diagnose(out, logits, target, eps, reduction, what):
    if not isinstance(out, torch.Tensor):
        fail(f"{what} returned {type(out).__name__}, not a tensor.", "return a torch.Tensor.")
    want = F.cross_entropy(logits, target, label_smoothing=eps, reduction=reduction)
    if out.shape != want.shape:
        fail(f"{what} returned shape {tuple(out.shape)}; with reduction={reduction!r} PyTorch returns "
             f"{tuple(want.shape)}.",
             "reduce the per-sample losses: .mean() for 'mean', .sum() for 'sum', nothing for 'none'.")
    got = out.detach().double()
    if torch.allclose(got, want.double(), rtol=1e-5, atol=1e-6):
        return
    reduce = {"mean": lambda t: t.mean(), "sum": lambda t: t.sum(), "none": lambda t: t}[reduction]
    for name, per_sample in _ls_variants(logits, target, eps).items():
        if torch.allclose(got, reduce(per_sample).double(), rtol=1e-5, atol=1e-6):
            mistake, fix = _LS_NAMES[name]
            fail(f"{what}: {mistake}.", fix)
    if reduction == "mean":
        per = F.cross_entropy(logits, target, label_smoothing=eps, reduction="none")
        if torch.allclose(got, per.sum().double(), rtol=1e-5):
            fail(f"{what} summed the per-sample losses; reduction='mean' averages them.", "use .mean().")
    fail(f"{what} = {_few(got)} differs from "
         f"F.cross_entropy(..., label_smoothing={eps}) = {_few(want)}.",
         "compute -(q * log_softmax(logits, dim=1)).sum(dim=1) with q = (1 - eps) * onehot + eps / K, "
         "then reduce.")


def ls_call(fn, logits, target, eps, reduction="mean", exercise="label_smoothed_cross_entropy"):
    what = f"label_smoothed_cross_entropy(logits {tuple(logits.shape)}, target, eps={eps}, reduction={reduction!r})"
    given = logits.clone()
    with _ls_builtins(exercise):
        out = call(fn, given, target.clone(), eps, reduction=reduction, _what=what)
    if not torch.equal(given, logits):
        fail(f"{what} modified the logits in place.", "compute on new tensors (no in-place ops on the input).")
    _ls_diagnose(out, logits, target, eps, reduction, what)
    return out


@check
def check_label_smoothed_cross_entropy(label_smoothed_cross_entropy) -> None:
    """Equal to F.cross_entropy(..., label_smoothing=eps) for several eps, K and reductions."""
    for seed, (n, k), eps in ((1, (12, 5), 0.1), (2, (30, 3), 0.3), (3, (8, 10), 0.05)):
        logits, target = _ls_probe(n, k, seed)
        ls_call(label_smoothed_cross_entropy, logits, target, eps)
    logits, target = _ls_probe(9, 4, 4)
    for reduction in ("sum", "none"):
        ls_call(label_smoothed_cross_entropy, logits, target, 0.2, reduction)


# ----------------------------------------------------------------------------- evaluate


class _Probe(nn.Module):
    """A small classifier with batch norm whose running statistics differ from any batch's."""

    def __init__(self, seed=0, d=6, k=4):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(d, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, k))
        with torch.no_grad():
            self.net[1].running_mean.uniform_(-1, 1)
            self.net[1].running_var.uniform_(0.5, 2)

    def forward(self, x):
        return self.net(x)


def _eval_data(seed=5, n=64, d=6, k=4):
    g = generator(seed)
    return 2 * torch.randn(n, d, generator=g), torch.randint(k, (n,), generator=g)


@check
def check_evaluate(evaluate) -> None:
    """Plain cross-entropy, accuracy and mean confidence of the model in eval() mode."""
    model = _Probe(3)
    model.train()
    x, y = _eval_data()
    before = copy.deepcopy(model.state_dict())
    reference = copy.deepcopy(model).eval()
    with torch.no_grad():
        logits = reference(x)
        train_logits = copy.deepcopy(model).train()(x)
    out = call(evaluate, model, x, y, _what="evaluate(model, x, y)")
    if not isinstance(out, dict) or not {"loss", "accuracy", "confidence"} <= set(out):
        fail(f"evaluate returned {type(out).__name__} {sorted(out) if isinstance(out, dict) else ''}; "
             "expected a dict with the keys 'loss', 'accuracy' and 'confidence'.",
             "return {'loss': ..., 'accuracy': ..., 'confidence': ...} (three numbers).")
    got = {k: as_number(out[k], f"evaluate(...)['{k}']") for k in ("loss", "accuracy", "confidence")}
    changed = any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    train_loss = F.cross_entropy(train_logits, y).item()
    if changed or math.isclose(got["loss"], train_loss, rel_tol=1e-4):
        fail("evaluate ran the model in train() mode: batch norm normalised with the statistics of the "
             "evaluation batch" + (" and its running statistics changed" if changed else "") + ".",
             "call model.eval() before the forward pass (and compute under torch.no_grad()).")
    loss = F.cross_entropy(logits, y).item()
    if not math.isclose(got["loss"], loss, rel_tol=1e-4, abs_tol=1e-6):
        for eps in (0.05, 0.1, 0.2, 0.3):
            if math.isclose(got["loss"], F.cross_entropy(logits, y, label_smoothing=eps).item(), rel_tol=1e-4):
                fail(f"evaluate's loss is the label-smoothed loss (eps = {eps}): smoothing at evaluation. "
                     "Label smoothing is a training device; the validation loss that compares methods "
                     "(and that early stopping watches) is the plain cross-entropy.",
                     "compute the loss with eps = 0: F.cross_entropy(logits, y) or your function with eps=0.")
        fail(f"evaluate's loss is {got['loss']:.5f}; the mean cross-entropy of the model in eval() mode is "
             f"{loss:.5f}.", "return F.cross_entropy(model(x), y).item() computed in eval() mode.")
    acc = (logits.argmax(1) == y).double().mean().item()
    if not math.isclose(got["accuracy"], acc, abs_tol=1e-6):
        fail(f"evaluate's accuracy is {got['accuracy']}; the share of argmax predictions equal to y is {acc}.",
             "return (logits.argmax(dim=1) == y).float().mean().item() (a share in [0, 1]).")
    conf = F.softmax(logits, 1).max(1).values.mean().item()
    if not math.isclose(got["confidence"], conf, rel_tol=1e-4):
        hint = ""
        if math.isclose(got["confidence"], F.softmax(logits, 1).gather(1, y[:, None]).mean().item(), rel_tol=1e-4):
            hint = " (that is the mean probability of the *true* class, not of the predicted one)"
        fail(f"evaluate's confidence is {got['confidence']:.5f}{hint}; the mean over the samples of the "
             f"largest softmax probability is {conf:.5f}.",
             "return torch.softmax(logits, dim=1).max(dim=1).values.mean().item().")


# ----------------------------------------------------------------------------- mixup


def recover(x_mix, y_soft, n):
    """From a mixup of x = eye(n) (scaled) and y = arange(n) with n classes: per row the λ and the
    partner index seen in the inputs and in the targets. Returns (lam_x, perm_x, lam_y, perm_y)
    as lists (λ per row; partner -1 when the row is itself)."""

    def rows(m):
        lams, partners = [], []
        for i in range(n):
            r = m[i].clone()
            lam = r[i].item()
            r[i] = 0
            j = int(r.abs().argmax())
            if r[j].abs() < 1e-9:
                lams.append(None if abs(lam - 1) < 1e-9 else lam)  # partner is itself
                partners.append(i)
            else:
                lams.append(lam)
                partners.append(j)
        return lams, partners

    lx, px = rows(x_mix)
    ly, py = rows(y_soft)
    return lx, px, ly, py


def mixup_call(mixup, x, y, alpha, k, gen, what=None):
    what = what or f"mixup(x {tuple(x.shape)}, y, alpha={alpha}, num_classes={k}, generator)"
    given_x, given_y = x.clone(), y.clone()
    out = call(mixup, given_x, given_y, alpha, k, generator=gen, _what=what)
    if not torch.equal(given_x, x) or not torch.equal(given_y, y):
        fail(f"{what} modified its inputs in place.", "build new tensors: lam * x + (1 - lam) * x[perm].")
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        fail(f"{what} returned {type(out).__name__}; expected a tuple (x_mix, y_soft) of two tensors.",
             "return x_mix, y_soft.")
    x_mix, y_soft = out
    if x_mix.shape != x.shape:
        fail(f"{what}: x_mix has shape {tuple(x_mix.shape)}, x has {tuple(x.shape)}.", "mix whole rows of x.")
    if y_soft.shape != (len(y), k):
        fail(f"{what}: y_soft has shape {tuple(y_soft.shape)}; expected (N, num_classes) = ({len(y)}, {k}).",
             "return soft targets: lam * one_hot(y, num_classes) + (1 - lam) * one_hot(y[perm], num_classes).")
    if not y_soft.is_floating_point():
        fail(f"{what}: y_soft has dtype {y_soft.dtype}; soft targets are fractions.",
             "convert the one-hot rows to x's dtype before mixing: F.one_hot(y, K).to(x.dtype).")
    return x_mix.detach(), y_soft.detach()


def mixup_structure(mixup, n=12, alpha=1.0, seed=0):
    """Run mixup on x = 3·eye(n), y = arange(n) and name any structural mistake. Returns λ."""
    x = 3 * torch.eye(n, dtype=torch.float64)
    y = torch.arange(n)
    x_mix, y_soft = mixup_call(mixup, x, y, alpha, n, generator(seed))
    sums = y_soft.double().sum(1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-6):
        fail(f"The rows of y_soft sum to {sums[:3].tolist()}..., not 1: the soft targets are not a "
             "probability distribution.",
             "mix two one-hot rows with weights lam and 1 - lam: they then sum to 1.")
    if torch.equal(y_soft, F.one_hot(y, n).to(y_soft.dtype)):
        if not torch.allclose(x_mix, x):
            fail("mixup mixed the inputs but not the targets: y_soft is one_hot(y), so a blend of two "
                 "examples is labelled as the first one only.",
                 "mix the targets with the same lam and perm: lam * onehot(y) + (1 - lam) * onehot(y[perm]).")
    lx, px, ly, py = recover(x_mix / 3, y_soft, n)
    mixed = [i for i in range(n) if px[i] != i]
    if not mixed:
        fail("mixup returned the inputs unmixed (every row is its own partner).",
             "draw a permutation with torch.randperm(N, generator=generator) and blend x with x[perm].")
    lams = [lx[i] for i in mixed]
    if max(lams) - min(lams) > 1e-6:
        fail(f"mixup used a different λ for each example (seen in x_mix: {', '.join(f'{v:.3f}' for v in lams[:4])} ...); "
             "mixup draws one λ for the whole batch.",
             "draw a single number: lam from Beta(alpha, alpha), once per call, and use it for every row.")
    if any(px[i] != py[i] for i in range(n)):
        fail("The targets were mixed with a different permutation than the inputs: row i of x_mix blends "
             "example i with perm[i], but row i of y_soft with another example's label.",
             "draw perm once and use it for both: x[perm] and onehot(y)[perm] (or onehot(y[perm])).")
    lam_y = [ly[i] for i in mixed]
    if any(abs(a - b) > 1e-6 for a, b in zip(lams, lam_y)):
        fail(f"The targets were mixed with another λ ({lam_y[0]:.3f}) than the inputs ({lams[0]:.3f}): "
             "a second draw, so the label no longer says how much of each example is in the input.",
             "draw lam once and use it for both x_mix and y_soft.")
    perm = sorted(px)
    if perm != list(range(n)):
        fail("The partners of the rows are not a permutation of the batch (some example is used twice).",
             "use torch.randperm(N, generator=generator), not random indices with replacement.")
    return lams[0]


@check
def check_mixup(mixup) -> None:
    """One λ and one permutation for the inputs and the targets; soft targets summing to 1."""
    for seed, alpha in ((0, 1.0), (1, 0.4), (2, 2.0)):
        lam = mixup_structure(mixup, n=12, alpha=alpha, seed=seed)
        if not 0 <= lam <= 1:
            fail(f"mixup's λ was {lam:.3f}, outside [0, 1].", "draw lam from Beta(alpha, alpha).")
    g = generator(7)
    x = torch.randn(16, 5, generator=g)
    y = torch.randint(3, (16,), generator=g)
    x32, ys = mixup_call(mixup, x, y, 0.4, 3, generator(8))
    if x32.dtype != x.dtype or ys.dtype != x.dtype:
        fail(f"mixup returned {x32.dtype} and {ys.dtype} for a {x.dtype} input.",
             "keep x's dtype for x_mix and build y_soft with dtype=x.dtype.")


# ----------------------------------------------------------------------------- early stopping


class _Dummy(nn.Module):
    """A model with one parameter whose value records the step at which it was saved."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3))

    def set(self, value):
        with torch.no_grad():
            self.w.fill_(float(value))


def run_script(EarlyStopping, metrics, what, **kwargs):
    """Step a fresh EarlyStopping(**kwargs) through ``metrics``; the list of returned flags."""
    es = call(EarlyStopping, _what=f"EarlyStopping({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})", **kwargs)
    model = _Dummy()
    flags = []
    for i, m in enumerate(metrics):
        model.set(i)
        flag = call(es.step, m, model, _what=f"{what}: step({m}, model) at step {i + 1}")
        if not isinstance(flag, (bool, type(None))) and not (isinstance(flag, torch.Tensor) and flag.numel() == 1):
            fail(f"{what}: step returned {type(flag).__name__}; expected True or False.",
                 "return a bool: whether patience steps in a row brought no improvement.")
        flags.append(bool(flag))
    return es, model, flags


def _first_true(flags):
    return next((i + 1 for i, f in enumerate(flags) if f), None)


def stopping_step(metrics, patience, min_delta=0.0, mode="min", *, variant=None):
    """The step (from 1) at which the contract's rule first returns True, or None; ``variant``
    names a known mistake to simulate instead."""
    best = math.inf if mode == "min" else -math.inf
    last = best
    bad = 0
    for i, m in enumerate(metrics, start=1):
        ref = last if variant == "vs_last" else best
        delta = 0.0 if variant == "ignores_min_delta" else min_delta
        better = (m < ref - delta) if mode == "min" else (m > ref + delta)
        if not math.isnan(m) and better:
            best = m
            if variant != "no_reset":
                bad = 0
        else:
            bad += 1
        last = m
        if (bad > patience) if variant == "late" else (bad >= patience):
            return i
    return None


_STOP_NAMES = {
    "late": ("One step late: patience={patience} counts the steps without improvement, and the stop comes "
             "when that count *reaches* patience (>=), not when it exceeds it.",
             "return self.bad_steps >= self.patience."),
    "no_reset": ("The count of steps without improvement is not reset at an improvement, so it adds up "
                 "bad steps that were not consecutive.",
                 "set the counter back to 0 at every improvement."),
    "ignores_min_delta": ("min_delta={min_delta} is ignored: an improvement must beat the best so far by "
                          "*more* than min_delta, so smaller gains count as steps without improvement.",
                          "improved = metric < self.best - self.min_delta (mode 'min'), metric > self.best + "
                          "self.min_delta (mode 'max')."),
    "vs_last": ("Each metric is compared with the previous one, not with the best so far, so a step that "
                "recovers part of a loss counts as an improvement.",
                "keep self.best (the best metric so far) and compare every new metric with it."),
}


def _name_stopping(flags, metrics, patience, min_delta, mode, what):
    got, want = _first_true(flags), stopping_step(metrics, patience, min_delta, mode)
    if got == want:
        return
    said = f"{what}: step returned True first at step {got}; the rule stops at step {want}."
    for variant, (mistake, fix) in _STOP_NAMES.items():
        if stopping_step(metrics, patience, min_delta, mode, variant=variant) == got:
            fail(f"{said} {mistake.format(patience=patience, min_delta=min_delta)}", fix)
    fail(said, "count consecutive steps without improvement: reset the counter to 0 at every improvement, "
               "add 1 otherwise, and return counter >= patience.")


SCRIPTS = [  # (metrics, patience, min_delta, mode, what it tests)
    ([1.0, 0.9, 0.95, 0.96, 0.97, 0.98], 3, 0.0, "min", "three steps without improvement"),
    ([1.0, 0.9, 0.95, 0.8, 0.85, 0.86, 0.87, 0.88], 3, 0.0, "min", "the count restarts at an improvement"),
    ([1.0, 0.9, 0.9, 0.9], 2, 0.0, "min", "ties"),
    ([1.0, 0.99, 0.985, 0.984, 0.983], 3, 0.02, "min", "min_delta"),
    ([1.0, 0.8, 0.9, 0.85, 0.84, 0.83], 3, 0.0, "min", "improvement on the best, not on the last value"),
    ([0.5, 0.6, 0.6, 0.55, 0.7, 0.69, 0.68], 2, 0.0, "max", "mode='max'"),
]


@check
def check_EarlyStopping(EarlyStopping) -> None:
    """Scripted metric sequences: patience counted, reset at improvements, ties, min_delta, 'max'."""
    for metrics, patience, min_delta, mode, about in SCRIPTS:
        what = f"EarlyStopping(patience={patience}, min_delta={min_delta}, mode={mode!r}) on {metrics} ({about})"
        _, _, flags = run_script(EarlyStopping, metrics, what, patience=patience, min_delta=min_delta, mode=mode)
        if about == "ties" and _first_true(flags) is None:
            fail(f"{what}: a metric equal to the best so far counted as an improvement, so it never stops.",
                 "an improvement must be strictly better: metric < best - min_delta.")
        _name_stopping(flags, metrics, patience, min_delta, mode, what)
    expect_raises(EarlyStopping, 3, mode="maximum", mistake="EarlyStopping(3, mode='maximum') was accepted.",
                  fix="raise ValueError unless mode is 'min' or 'max'.")


# ----------------------------------------------------------------------------- EMA, update_bn

from ._averaging import _bn_layers, bn_compare, bn_loader, check_ema_update, check_update_bn  # noqa: E402,F401


# ----------------------------------------------------------------------------- calibration


def _probs_from_conf(conf, pred, k=4):
    """Rows whose largest probability is ``conf`` at class ``pred``, the rest spread evenly."""
    conf = torch.tensor(conf, dtype=torch.float64)
    rest = (1 - conf) / (k - 1)
    probs = rest[:, None].repeat(1, k)
    probs[torch.arange(len(conf)), torch.tensor(pred)] = conf
    return probs


# The notebook's worked example with 10 bins:
# bin (0.8, 0.9]: 0.85 x 4 (3 right): |0.75 - 0.85| = 0.1, weight 0.4
# bin (0.6, 0.7]: 0.65 x 2 (2 right): |1 - 0.65| = 0.35, weight 0.2
# bin (0.3, 0.4]: 0.35 x 4 (1 right): |0.25 - 0.35| = 0.1, weight 0.4
# ECE = 0.4·0.1 + 0.2·0.35 + 0.4·0.1 = 0.15. Known mistakes: the bins unweighted
# (0.1 + 0.35 + 0.1) / 3 = 0.1833; the true class's probability as the confidence 0.25.
_WORKED = ([0.85] * 4 + [0.65] * 2 + [0.35] * 4, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1],
           [0, 1, 2, 0, 0, 1, 2, 0, 1, 2], 0.15)


def ece_call(fn, probs, labels, n_bins, what=None):
    what = what or f"expected_calibration_error(probs {tuple(probs.shape)}, labels, n_bins={n_bins})"
    given = probs.clone()
    out = call(fn, given, labels.clone(), n_bins=n_bins, _what=what)
    if not torch.equal(given, probs):
        fail(f"{what} modified probs in place.", "compute on new tensors.")
    return as_number(out, "expected_calibration_error(...)")


@check
def check_expected_calibration_error(expected_calibration_error) -> None:
    """A worked example (10 bins), a perfectly calibrated one, and an overconfident one."""
    conf, pred, labels, want = _WORKED
    probs = _probs_from_conf(conf, pred)
    got = ece_call(expected_calibration_error, probs, torch.tensor(labels), 10)
    if not math.isclose(got, want, abs_tol=1e-6):
        hint = ""
        if math.isclose(got, (0.1 + 0.35 + 0.1) / 3, abs_tol=1e-6):
            hint = (" That is the plain mean of the bins' gaps: each bin must be weighted by its share of the "
                    "samples, |B_b| / N.")
        elif math.isclose(got, 0.25, abs_tol=1e-6):
            hint = (" That is what the probability of the *true* class as the confidence gives; calibration "
                    "compares the probability of the *predicted* class (the largest) with how often it is right.")
        fail(f"expected_calibration_error of the worked example (10 bins, in the exercise's text) is "
             f"{got:.4f}; it is 0.15 = 0.4·|0.75 − 0.85| + 0.2·|1 − 0.65| + 0.4·|0.25 − 0.35|.{hint}",
             "confidence, prediction = probs.max(dim=1); per bin, |accuracy − mean confidence| weighted by "
             "the bin's share of the samples; sum over the non-empty bins.")
    # every prediction right at confidence 1: calibrated, ECE 0 (and no NaN from empty bins)
    probs = _probs_from_conf([1.0] * 6, [0, 1, 2, 3, 0, 1])
    got = ece_call(expected_calibration_error, probs, torch.tensor([0, 1, 2, 3, 0, 1]), 15)
    if not math.isclose(got, 0.0, abs_tol=1e-9):
        fail(f"Six right predictions at confidence 1 give ECE {got}; a model that is right whenever it is "
             "sure is perfectly calibrated: 0.",
             "skip the empty bins (no division by zero) and put a confidence of 1 in the last bin.")


# ----------------------------------------------------------------------------- questions (form)


@check
def check_confidence_drop_is_a_number(confidence_drop) -> None:
    """One number: a difference of two mean confidences lies in (-1, 1)."""
    value = as_number(confidence_drop, "confidence_drop")
    if not -1 < value < 1:
        fail(f"confidence_drop = {value} is not a difference of two confidences (each in [0, 1]).",
             "subtract the mean confidence with label smoothing from the mean confidence without.")


@check
def check_restored_epoch_is_an_epoch(restored_epoch, stopping) -> None:
    """One of the epochs the early-stopping run trained (counted from 1)."""
    value = as_number(restored_epoch, "restored_epoch")
    n = len(stopping["val_loss"])
    if value != int(value) or not 1 <= value <= n:
        fail(f"restored_epoch = {value:g} is not one of the epochs run: 1 to {n} (counted from 1).",
             "give the epoch number, counted from 1, of the weights that restore() loads back.")


@check
def check_ema_gain_is_a_number(ema_gain) -> None:
    """One number (a difference of two validation losses)."""
    as_number(ema_gain, "ema_gain")
