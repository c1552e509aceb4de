"""Typical wrong answers for 07-beyond-penalties (see grader/mistakes/__init__.py)."""
from . import Mistake

_LS_HEAD = '''
def label_smoothed_cross_entropy(logits, target, eps, reduction="mean"):
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps must be in [0, 1], got {eps}")
    k = logits.shape[1]
    onehot = F.one_hot(target, k).to(logits.dtype)
'''
_LS_TAIL = '''
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss
'''

_MIX_HEAD = '''
def mixup(x, y, alpha, num_classes, generator=None):
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    onehot = F.one_hot(y, num_classes).to(x.dtype)
'''


def _lam(name="lam"):
    return (f"    g = torch._standard_gamma(torch.full((2,), float(alpha)), generator=generator)\n"
            f"    {name} = (g[0] / g.sum()).item()\n")


_ES_INIT = '''
class EarlyStopping:
    def __init__(self, patience, min_delta=0.0, mode="min"):
        if mode not in ("min", "max"):
            raise ValueError(mode)
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_steps = 0
        self.best_state = None

    def restore(self, model):
        model.load_state_dict(self.best_state)
'''


def _es(step_body):
    return _ES_INIT + "\n    def step(self, metric, model):\n" + step_body


_IMPROVED = '''        if self.mode == "min":
            improved = metric < self.best - self.min_delta
        else:
            improved = metric > self.best + self.min_delta
'''
_COPY = "{k: v.detach().clone() for k, v in model.state_dict().items()}"

_BN_HEAD = '''
def update_bn(loader, model):
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
'''

_ECE_HEAD = '''
def expected_calibration_error(probs, labels, n_bins=15):
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).to(probs.dtype)
'''

MISTAKES = {
    # ------------------------------------------------------------ label smoothing
    "ls_k_minus_1": Mistake("label_smoothed_cross_entropy", _LS_HEAD + '''
    q = (1 - eps) * onehot + eps / (k - 1) * (1 - onehot)
    loss = -(q * torch.log_softmax(logits, dim=1)).sum(dim=1)
''' + _LS_TAIL, "smoothing mass eps/(K-1) on the wrong classes only"),
    "ls_softmax": Mistake("label_smoothed_cross_entropy", _LS_HEAD + '''
    q = (1 - eps) * onehot + eps / k
    loss = -(q * torch.softmax(logits, dim=1)).sum(dim=1)
''' + _LS_TAIL, "softmax where log-softmax is needed"),
    "ls_no_true_class": Mistake("label_smoothed_cross_entropy", _LS_HEAD + '''
    q = (1 - eps) * onehot + eps / k * (1 - onehot)
    loss = -(q * torch.log_softmax(logits, dim=1)).sum(dim=1)
''' + _LS_TAIL, "the uniform part leaves out the true class"),
    "ls_accepts_bad_eps": Mistake("label_smoothed_cross_entropy", '''
def label_smoothed_cross_entropy(logits, target, eps, reduction="mean"):
    k = logits.shape[1]
    q = (1 - eps) * F.one_hot(target, k).to(logits.dtype) + eps / k
    loss = -(q * torch.log_softmax(logits, dim=1)).sum(dim=1)
''' + _LS_TAIL, "eps outside [0, 1] accepted"),
    "ls_calls_builtin": Mistake("label_smoothed_cross_entropy", '''
def label_smoothed_cross_entropy(logits, target, eps, reduction="mean"):
    if not 0.0 <= eps <= 1.0:
        raise ValueError(eps)
    return F.cross_entropy(logits, target, label_smoothing=eps, reduction=reduction)
''', "calls F.cross_entropy"),
    # ------------------------------------------------------------ evaluate
    "eval_smoothed": Mistake("evaluate", '''
def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x)
    return {"loss": F.cross_entropy(logits, y, label_smoothing=0.1).item(),
            "accuracy": (logits.argmax(dim=1) == y).float().mean().item(),
            "confidence": torch.softmax(logits, dim=1).max(dim=1).values.mean().item()}
''', "label smoothing applied at evaluation"),
    "eval_train_mode": Mistake("evaluate", '''
def evaluate(model, x, y):
    with torch.no_grad():
        logits = model(x)
    return {"loss": F.cross_entropy(logits, y).item(),
            "accuracy": (logits.argmax(dim=1) == y).float().mean().item(),
            "confidence": torch.softmax(logits, dim=1).max(dim=1).values.mean().item()}
''', "evaluated in train() mode"),
    # ------------------------------------------------------------ mixup
    "mix_x_only": Mistake("mixup", _MIX_HEAD + _lam() + '''
    perm = torch.randperm(x.shape[0], generator=generator)
    return lam * x + (1 - lam) * x[perm], onehot
''', "inputs mixed, targets not"),
    "mix_two_lambdas": Mistake("mixup", _MIX_HEAD + _lam("lam_x") + _lam("lam_y") + '''
    perm = torch.randperm(x.shape[0], generator=generator)
    return lam_x * x + (1 - lam_x) * x[perm], lam_y * onehot + (1 - lam_y) * onehot[perm]
''', "a different lambda for the inputs and the targets"),
    "mix_two_perms": Mistake("mixup", _MIX_HEAD + _lam() + '''
    perm_x = torch.randperm(x.shape[0], generator=generator)
    perm_y = torch.randperm(x.shape[0], generator=generator)
    return lam * x + (1 - lam) * x[perm_x], lam * onehot + (1 - lam) * onehot[perm_y]
''', "a different permutation for the inputs and the targets"),
    "mix_lambda_per_example": Mistake("mixup", _MIX_HEAD + '''
    n = x.shape[0]
    g = torch._standard_gamma(torch.full((n, 2), float(alpha)), generator=generator)
    lam = (g[:, 0] / g.sum(dim=1)).to(x.dtype)
    perm = torch.randperm(n, generator=generator)
    lx = lam.view(-1, *([1] * (x.dim() - 1)))
    return lx * x + (1 - lx) * x[perm], lam[:, None] * onehot + (1 - lam[:, None]) * onehot[perm]
''', "one lambda per example"),
    "mix_uniform_lambda": Mistake("mixup", _MIX_HEAD + '''
    lam = torch.rand((), generator=generator).item()
    perm = torch.randperm(x.shape[0], generator=generator)
    return lam * x + (1 - lam) * x[perm], lam * onehot + (1 - lam) * onehot[perm]
''', "lambda from a uniform, not Beta(alpha, alpha)"),
    "mix_ignores_generator": Mistake("mixup", _MIX_HEAD + '''
    lam = torch.distributions.Beta(float(alpha), float(alpha)).sample().item()
    perm = torch.randperm(x.shape[0])
    return lam * x + (1 - lam) * x[perm], lam * onehot + (1 - lam) * onehot[perm]
''', "the generator ignored"),
    # ------------------------------------------------------------ early stopping
    "es_reference": Mistake("EarlyStopping", _es('''        metric = float(metric)
''' + _IMPROVED + '''        if improved:
            self.best, self.bad_steps = metric, 0
            self.best_state = model.state_dict()
        else:
            self.bad_steps += 1
        return self.bad_steps >= self.patience
'''), "the best state is a reference to the live weights"),
    "es_patience_late": Mistake("EarlyStopping", _es('''        metric = float(metric)
''' + _IMPROVED + f'''        if improved:
            self.best, self.bad_steps = metric, 0
            self.best_state = {_COPY}
        else:
            self.bad_steps += 1
        return self.bad_steps > self.patience
'''), "stops one step late (count > patience)"),
    "es_no_reset": Mistake("EarlyStopping", _es('''        metric = float(metric)
''' + _IMPROVED + f'''        if improved:
            self.best = metric
            self.best_state = {_COPY}
        else:
            self.bad_steps += 1
        return self.bad_steps >= self.patience
'''), "the count is not reset at an improvement"),
    "es_ignores_min_delta": Mistake("EarlyStopping", _es(f'''        metric = float(metric)
        improved = metric < self.best if self.mode == "min" else metric > self.best
        if improved:
            self.best, self.bad_steps = metric, 0
            self.best_state = {_COPY}
        else:
            self.bad_steps += 1
        return self.bad_steps >= self.patience
'''), "min_delta ignored"),
    "es_nan_improves": Mistake("EarlyStopping", _es(f'''        metric = float(metric)
        if self.mode == "min":
            improved = not metric >= self.best - self.min_delta
        else:
            improved = not metric <= self.best + self.min_delta
        if improved:
            self.best, self.bad_steps = metric, 0
            self.best_state = {_COPY}
        else:
            self.bad_steps += 1
        return self.bad_steps >= self.patience
'''), "NaN counted as an improvement"),
    # ------------------------------------------------------------ EMA
    "ema_inverted": Mistake("ema_update", '''
def ema_update(ema_model, model, decay):
    with torch.no_grad():
        for e, p in zip(ema_model.parameters(), model.parameters()):
            e.mul_(1 - decay).add_(p, alpha=decay)
        for eb, b in zip(ema_model.buffers(), model.buffers()):
            eb.copy_(b)
''', "decay inverted"),
    "ema_no_buffers": Mistake("ema_update", '''
def ema_update(ema_model, model, decay):
    with torch.no_grad():
        for e, p in zip(ema_model.parameters(), model.parameters()):
            e.mul_(decay).add_(p, alpha=1 - decay)
''', "buffers not copied"),
    # ------------------------------------------------------------ update_bn
    "bn_eval_mode": Mistake("update_bn", _BN_HEAD + '''
    with torch.no_grad():
        for batch in loader:
            if isinstance(batch, (list, tuple)):
                batch = batch[0]
            model(batch)
''', "averaged weights evaluated without recomputed statistics (pass in eval mode)"),
    "bn_exponential": Mistake("update_bn", _BN_HEAD + '''
    was_training = model.training
    model.train()
    with torch.no_grad():
        for batch in loader:
            if isinstance(batch, (list, tuple)):
                batch = batch[0]
            model(batch)
    model.train(was_training)
''', "no reset, exponential average with the layer's momentum"),
    "bn_momentum_lost": Mistake("update_bn", _BN_HEAD + '''
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    was_training = model.training
    model.train()
    with torch.no_grad():
        for batch in loader:
            if isinstance(batch, (list, tuple)):
                batch = batch[0]
            model(batch)
    model.train(was_training)
''', "momentum not restored"),
    # ------------------------------------------------------------ calibration
    "ece_left_closed": Mistake("expected_calibration_error", _ECE_HEAD + '''
    index = (conf * n_bins).floor().long().clamp(0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        inside = index == b
        if inside.any():
            ece += inside.float().mean().item() * abs(correct[inside].mean().item() - conf[inside].mean().item())
    return ece
''', "bins [b/n, (b+1)/n) instead of (b/n, (b+1)/n]"),
    "ece_unweighted": Mistake("expected_calibration_error", _ECE_HEAD + '''
    index = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    gaps = []
    for b in range(n_bins):
        inside = index == b
        if inside.any():
            gaps.append(abs(correct[inside].mean().item() - conf[inside].mean().item()))
    return sum(gaps) / len(gaps)
''', "bins not weighted by their size"),
    "ece_true_class": Mistake("expected_calibration_error", _ECE_HEAD + '''
    conf = probs.gather(1, labels[:, None]).squeeze(1)
    index = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        inside = index == b
        if inside.any():
            ece += inside.float().mean().item() * abs(correct[inside].mean().item() - conf[inside].mean().item())
    return ece
''', "the true class's probability as the confidence"),
    # ------------------------------------------------------------ questions, from the run
    "drop_inverted": Mistake("confidence_drop", '''
confidence_drop = (study["confidence"][methods.index("smoothing")]
                   - study["confidence"][methods.index("plain")]).mean().item()
''', "smoothing minus plain"),
    "drop_mixup": Mistake("confidence_drop", '''
confidence_drop = (study["confidence"][methods.index("plain")]
                   - study["confidence"][methods.index("mixup")]).mean().item()
''', "the mixup row"),
    "restored_stop_epoch": Mistake("restored_epoch", '''
restored_epoch = stopping["epochs_run"]
''', "the epoch where training stopped"),
    "restored_from_zero": Mistake("restored_epoch", '''
best_so_far, restored_epoch = math.inf, 0
for epoch, loss in enumerate(stopping["val_loss"]):
    if loss < best_so_far - stopping["min_delta"]:
        best_so_far, restored_epoch = loss, epoch
''', "counted from 0"),
    "ema_gain_inverted": Mistake("ema_gain", '''
ema_gain = (ema["ema_loss"] - ema["live_loss"]).mean().item()
''', "EMA minus live"),
    "ema_gain_after_bn": Mistake("ema_gain", '''
ema_gain = (ema["live_loss"] - ema["ema_bn_loss"]).mean().item()
''', "the EMA model after update_bn"),
}

DEMO = ("ls_k_minus_1", "es_reference", "bn_eval_mode")
