"""Hidden checks for assignment 07-beyond-penalties, and the answers of its questions.

They reuse the probes and diagnoses of the visible checks
(:mod:`grader.checks.beyond_penalties`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from grader.checks._common import as_number, call, check, expect_raises, fail, generator
from grader.checks.beyond_penalties import (
    _bn_layers,
    _ls_builtins,
    _ls_probe,
    _probs_from_conf,
    bn_compare,
    bn_loader,
    ece_call,
    ls_call,
    mixup_call,
    mixup_structure,
    recover,
    run_script,
)

# ----------------------------------------------------------------------------- label smoothing


@check
def check_label_smoothed_cross_entropy_more(label_smoothed_cross_entropy) -> None:
    """eps = 0 and eps = 1, float32, the gradient of PyTorch's loss, eps outside [0, 1] refused."""
    logits, target = _ls_probe(10, 6, 11)
    ls_call(label_smoothed_cross_entropy, logits, target, 0.0)
    ls_call(label_smoothed_cross_entropy, logits, target, 1.0)
    l32, t32 = _ls_probe(20, 4, 12, dtype=torch.float32)
    out = ls_call(label_smoothed_cross_entropy, l32, t32, 0.1)
    if out.dtype != torch.float32:
        fail(f"label_smoothed_cross_entropy returned {out.dtype} for float32 logits.",
             "compute in the logits' dtype (build the target with dtype=logits.dtype).")
    logits, target = _ls_probe(7, 5, 13)
    mine = logits.clone().requires_grad_(True)
    with _ls_builtins("label_smoothed_cross_entropy"):
        loss = call(label_smoothed_cross_entropy, mine, target, 0.2,
                    _what="label_smoothed_cross_entropy(logits requiring grad, target, 0.2)")
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        fail("The loss does not track gradients: a network could not be trained with it.",
             "compute it from the logits with differentiable operations (no .detach(), .item() or .data).")
    loss.backward()
    ref = logits.clone().requires_grad_(True)
    F.cross_entropy(ref, target, label_smoothing=0.2).backward()
    if mine.grad is None or not torch.allclose(mine.grad, ref.grad, rtol=1e-5, atol=1e-7):
        fail("The gradient of the loss with respect to the logits differs from PyTorch's "
             "(softmax(logits) − q, divided by N).",
             "keep the smoothed target q constant (no gradient through it) and use log_softmax.")
    for eps in (-0.1, 1.5):
        expect_raises(label_smoothed_cross_entropy, logits, target, eps,
                      mistake=f"eps = {eps} was accepted; the smoothing weight is a share in [0, 1].",
                      fix="raise ValueError when eps is not in [0, 1].")


# ----------------------------------------------------------------------------- mixup


def _lambdas(mixup, alpha, calls, seed, n=8):
    g = generator(seed)
    x = torch.eye(n, dtype=torch.float64)
    y = torch.arange(n)
    lams = []
    for _ in range(calls):
        x_mix, y_soft = mixup_call(mixup, x, y, alpha, n, g)
        lx, px, _, _ = recover(x_mix, y_soft, n)
        mixed = [lx[i] for i in range(n) if px[i] != i]
        if mixed:
            lams.append(mixed[0])
    return torch.tensor(lams, dtype=torch.float64)


@check
def check_mixup_random(mixup) -> None:
    """λ from Beta(α, α) (its spread for α = 0.2 and α = 4), a new λ and permutation on every call,
    the same ones from generators seeded alike."""
    mixup_structure(mixup, n=10, alpha=0.3, seed=3)
    x = torch.eye(8, dtype=torch.float64)
    y = torch.arange(8)
    a = mixup_call(mixup, x, y, 0.5, 8, generator(5))
    b = mixup_call(mixup, x, y, 0.5, 8, generator(5))
    if not (torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])):
        fail("Two generators seeded alike gave different mixes: mixup ignores its `generator`.",
             "draw both the permutation and λ from it: torch.randperm(N, generator=generator), and λ from "
             "two Gamma draws torch._standard_gamma(torch.full((2,), alpha), generator=generator).")
    g = generator(6)
    c = mixup_call(mixup, x, y, 0.5, 8, g)
    d = mixup_call(mixup, x, y, 0.5, 8, g)
    if torch.equal(c[0], d[0]):
        fail("Two calls with the same generator gave the same mix: λ and the permutation must be drawn anew "
             "on every call.", "draw from the generator you were given on every call; never re-seed it.")
    for alpha in (0.2, 4.0):
        lams = _lambdas(mixup, alpha, 100, seed=int(10 * alpha))
        spread = ((lams - 0.5) ** 2).mean().item()  # E[(λ - 1/2)²] = Var λ for a symmetric λ
        beta = 1 / (4 * (2 * alpha + 1))
        # (λ - 1/2)² has standard deviation Var·sqrt(2 - 6/(2α + 3)) under Beta(α, α)
        tol = 6 * beta * math.sqrt(2 - 6 / (2 * alpha + 3)) / math.sqrt(len(lams))
        if abs(spread - beta) <= tol:
            continue
        if abs(spread - 1 / 12) <= 6 * 0.0745 / math.sqrt(len(lams)):
            fail(f"With alpha = {alpha} the λ of 100 calls spread like a uniform draw (E[(λ − ½)²] = {spread:.3f}, "
                 f"uniform 1/12 = 0.083, Beta({alpha}, {alpha}) {beta:.3f}): λ is drawn from U(0, 1), which "
                 "ignores alpha. Mixup's λ comes from Beta(α, α): small α gives λ near 0 or 1 (mild mixing).",
                 "draw λ from Beta(alpha, alpha), e.g. g = torch._standard_gamma(torch.full((2,), alpha), "
                 "generator=generator); lam = g[0] / g.sum().")
        fail(f"With alpha = {alpha} the λ of 100 calls have E[(λ − ½)²] = {spread:.3f}; Beta({alpha}, {alpha}) "
             f"gives {beta:.3f} (± {tol:.3f}).",
             "draw λ from Beta(alpha, alpha), once per call.")


# ----------------------------------------------------------------------------- early stopping


@check
def check_EarlyStopping_state(EarlyStopping, model_factory) -> None:
    """The best weights are a copy: restore() brings back those of the best step even after the
    model changed in place; `best` is the best metric; NaN never improves."""
    es = call(EarlyStopping, 2, _what="EarlyStopping(patience=2)")
    model = call(model_factory, 0, hidden=16, _what="bp.classifier(0, hidden=16)")
    live = model.state_dict()
    saved = {k: v.detach().clone() for k, v in live.items()}
    call(es.step, 0.5, model, _what="step(0.5, model)")
    changed = {k: (v + 1 if v.is_floating_point() else v) for k, v in saved.items()}
    model.load_state_dict(changed)  # training goes on: the weights change in place
    if not (isinstance(model, nn.Module) and all(torch.equal(live[k], changed[k]) for k in live)):
        fail("bp.classifier(0) did not give a real PyTorch model (its state_dict() does not hold the "
             "model's own tensors), so the test cannot tell a copy from a reference.",
             "run the notebook's setup cell unchanged and do not redefine `bp`.")
    call(es.step, 0.7, model, _what="step(0.7, model)")
    best = getattr(es, "best", None)
    if best is None or not math.isclose(float(best), 0.5):
        fail(f"After step(0.5) and step(0.7), EarlyStopping.best is {best!r}; it is the best metric so far, 0.5.",
             "store the best metric in self.best at every improvement.")
    call(es.restore, model, _what="restore(model)")
    now = model.state_dict()
    if all(torch.equal(now[k], changed[k]) for k in saved):
        fail("restore(model) brought back the *current* weights, not those of the best step: the stored "
             "\"best\" state is a reference to the live tensors (model.state_dict() returns views of the "
             "parameters, which training keeps changing in place).",
             "store a copy: {k: v.detach().clone() for k, v in model.state_dict().items()} "
             "(or copy.deepcopy(model.state_dict())).")
    if not all(torch.equal(now[k], saved[k]) for k in saved):
        fail("restore(model) did not bring back the weights of the best step.",
             "model.load_state_dict(the copy stored at the last improvement).")
    # NaN: never an improvement, it counts as a step without one
    script = [1.0, float("nan"), float("nan"), float("nan")]
    what = "EarlyStopping(patience=2) on [1.0, nan, nan, nan]"
    es, dummy, flags = run_script(EarlyStopping, script, what, patience=2)
    if flags[:3] == [False, False, False] and flags[3]:
        fail(f"{what} returned {flags}; expected [False, False, True, True]. One step late: the stop comes "
             "when the count of steps without improvement *reaches* patience (>=), not when it exceeds it.",
             "return self.bad_steps >= self.patience.")
    if flags[:3] != [False, False, True]:
        fail(f"{what} returned {flags}; expected [False, False, True, True]: "
             "a NaN metric (a diverged run) is never an improvement.",
             "test improvement as metric < best - min_delta, which is False for NaN (never "
             "`not metric >= best`, which is True for NaN), and count the NaN as a step without improvement.")
    if not math.isclose(float(es.best), 1.0):
        fail(f"After [1.0, nan, nan, nan], best is {es.best}; a NaN must not replace the best metric.",
             "update self.best only at an improvement.")
    call(es.restore, dummy, _what="restore(model)")
    if not torch.all(dummy.w.detach() == 0):
        fail("After [1.0, nan, nan, nan], restore() did not bring back the weights of the first step "
             "(a NaN step stored its weights as the best).",
             "store the weights only at an improvement.")


# ----------------------------------------------------------------------------- update_bn


@check
def check_update_bn_more(update_bn, model_factory) -> None:
    """A loader of (input, target) pairs; each layer's momentum and the model's mode restored."""
    loader = [(xb, torch.zeros(len(xb), dtype=torch.long)) for xb in bn_loader(3)]
    what = "update_bn(loader of (x, y) pairs, model)"
    model = bn_compare(update_bn, model_factory, loader, what, momentum=0.3)
    for m in _bn_layers(model):
        if m.momentum != 0.3:
            fail(f"After {what} a batch norm layer's momentum is {m.momentum}, it was 0.3: the next training "
                 "steps would update the statistics differently.",
                 "store each layer's momentum before setting it to None and put it back after the pass.")
    if model.training:
        fail(f"{what} left the model in train() mode; it was in eval() mode.",
             "remember model.training before the pass and restore it with model.train(was_training).")


# ----------------------------------------------------------------------------- calibration


def _reference_ece(probs, labels, n_bins, right_closed=True):
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).double()
    if right_closed:
        index = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)  # (b/n, (b+1)/n] -> b
    else:
        index = (conf * n_bins).floor().long().clamp(0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        inside = index == b
        if inside.any():
            total += inside.double().mean().item() * abs(correct[inside].mean().item() - conf[inside].double().mean().item())
    return total


@check
def check_expected_calibration_error_more(expected_calibration_error) -> None:
    """Confidences on the bin edges go to the bin they close; random predictions; the predicted
    class's probability, not the true class's."""
    # 10 bins; 0.3 closes (0.2, 0.3], 0.7 closes (0.6, 0.7]
    probs = _probs_from_conf([0.3, 0.3, 0.7, 0.7, 0.75], [0, 1, 2, 3, 0])
    labels = torch.tensor([0, 0, 2, 3, 1])
    want = _reference_ece(probs, labels, 10)
    got = ece_call(expected_calibration_error, probs, labels, 10)
    if not math.isclose(got, want, abs_tol=1e-6) and math.isclose(
            got, _reference_ece(probs, labels, 10, right_closed=False), abs_tol=1e-6):
        fail(f"With confidences exactly on bin edges (0.3 and 0.7 with 10 bins) the ECE is {got:.4f}, "
             f"expected {want:.4f}: bin b holds (b/n, (b+1)/n], so 0.3 belongs to (0.2, 0.3] and 0.7 to "
             "(0.6, 0.7]; bins [b/n, (b+1)/n) put them one bin up.",
             "bin index = ceil(conf * n_bins) - 1 (clamped to [0, n_bins - 1]), or compare conf > lower "
             "and conf <= upper.")
    g = generator(21)
    logits = 2 * torch.randn(200, 5, generator=g, dtype=torch.float64)
    probs = torch.softmax(logits, dim=1)
    labels = torch.randint(5, (200,), generator=g)
    want = _reference_ece(probs, labels, 15)
    got = ece_call(expected_calibration_error, probs, labels, 15)
    if math.isclose(got, want, abs_tol=1e-6):
        return
    true_conf = probs.gather(1, labels[:, None]).squeeze(1)
    if math.isclose(got, _true_class_ece(true_conf, probs, labels, 15), abs_tol=1e-6):
        fail("The confidence used is the probability of the *true* class; calibration compares the "
             "probability of the *predicted* class (the largest one) with how often that prediction is right.",
             "conf, pred = probs.max(dim=1); correct = pred == labels.")
    fail(f"expected_calibration_error on 200 random predictions (15 bins) is {got:.5f}, expected {want:.5f}.",
         "per bin (b/n, (b+1)/n]: |B|/N · |accuracy − mean confidence|, summed over the non-empty bins.")


def _true_class_ece(true_conf, probs, labels, n_bins):
    pred = probs.argmax(1)
    correct = (pred == labels).double()
    index = (torch.ceil(true_conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        inside = index == b
        if inside.any():
            total += inside.double().mean().item() * abs(correct[inside].mean().item() - true_conf[inside].mean().item())
    return total


# ----------------------------------------------------------------------------- questions


def _close(a, b):
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


@check
def check_confidence_drop(confidence_drop, study) -> None:
    """The mean over the seeds of (confidence without smoothing − confidence with it), from study."""
    value = as_number(confidence_drop, "confidence_drop")
    conf = study["confidence"].double()
    methods = list(study["methods"])
    plain, smooth, mix = (methods.index(m) for m in ("plain", "smoothing", "mixup"))
    want = (conf[plain] - conf[smooth]).mean().item()
    if _close(value, want):
        return
    if _close(value, -want):
        fail(f"confidence_drop = {value:.4f} is the inverse difference: confidence *with* smoothing minus "
             f"without. Your run's drop is {want:.4f}.",
             "subtract in the other order: study['confidence'][plain] - study['confidence'][smoothing].")
    if _close(value, (conf[plain] - conf[mix]).mean().item()):
        fail("confidence_drop is the drop with mixup, not with label smoothing.",
             "use the row of 'smoothing' (study['methods'].index('smoothing')).")
    fail(f"confidence_drop = {value:.4f}; from your run, the mean over the seeds of the confidence without "
         f"smoothing minus with it is {want:.4f}.",
         "(study['confidence'][plain] - study['confidence'][smoothing]).mean().")


@check
def check_restored_epoch(restored_epoch, stopping) -> None:
    """The epoch (from 1) of the last improvement by more than min_delta in the run's history."""
    from regnorm.beyond_penalties import rule_best_epoch

    value = as_number(restored_epoch, "restored_epoch")
    history = [float(v) for v in stopping["val_loss"]]
    want = rule_best_epoch(history, float(stopping["min_delta"]))
    if value == want:
        return
    if value == len(history):
        fail(f"restored_epoch = {value:g} is the epoch where training *stopped*, {len(history) - want} epochs "
             f"after the last improvement; restore() loads the weights of epoch {want}.",
             "find the last epoch whose loss beat the best before it by more than min_delta.")
    if value == want - 1:
        fail(f"restored_epoch = {value:g} counts the epochs from 0; the question counts from 1 (epoch {want}).",
             "add 1 to the index.")
    plain = 1 + min(range(len(history)), key=history.__getitem__)
    if value == plain:
        fail(f"restored_epoch = {value:g} is the epoch of the lowest loss, but its gain over the best before it "
             f"was not more than min_delta = {stopping['min_delta']}: not an improvement for early stopping, "
             f"which restores epoch {want}.",
             "apply the rule epoch by epoch: an improvement beats the best so far by more than min_delta.")
    fail(f"restored_epoch = {value:g}; in your run early stopping restores the weights of epoch {want}.",
         "the epoch (from 1) of the last improvement by more than min_delta in stopping['val_loss'].")


@check
def check_ema_gain(ema_gain, ema) -> None:
    """Mean over the seeds of (live model's validation loss − EMA model's), from the run."""
    value = as_number(ema_gain, "ema_gain")
    want = (ema["live_loss"].double() - ema["ema_loss"].double()).mean().item()
    if _close(value, want):
        return
    if _close(value, -want):
        fail(f"ema_gain = {value:.4f} is the inverse difference (EMA minus live); your run's gain is {want:.4f}.",
             "ema['live_loss'] - ema['ema_loss'], averaged over the seeds.")
    if _close(value, (ema["live_loss"].double() - ema["ema_bn_loss"].double()).mean().item()):
        fail("ema_gain uses the EMA model after update_bn; the question asks for the EMA model as it is "
             "(ema['ema_loss']).", "ema['live_loss'] - ema['ema_loss'], averaged over the seeds.")
    fail(f"ema_gain = {value:.4f}; from your run, the mean over the seeds of the live model's validation loss "
         f"minus the EMA model's is {want:.4f}.", "(ema['live_loss'] - ema['ema_loss']).mean().")
