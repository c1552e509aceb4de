"""Typical wrong answers for 02-weight-decay (see grader/mistakes/__init__.py)."""
from . import Mistake

_SGD_HEAD = '''
def sgd_step(params, lr, momentum=0.0, weight_decay=0.0, buffers=None):
    params = list(params)
    for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if buffers is None:
        buffers = [None] * len(params)
    elif len(buffers) != len(params):
        raise ValueError("one buffer per parameter")
    new_buffers = []
'''


def _sgd(body: str) -> str:
    return _SGD_HEAD + body


_GROUPS_HEAD = '''
def no_decay_param_groups(model, weight_decay):
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    decay, no_decay = [], []
'''
_GROUPS_TAIL = '''
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]
'''

MISTAKES = {
    "l1_no_abs": Mistake("l1_penalty", '''
def l1_penalty(params):
    return sum(w.sum() for w in params)
''', "L1 without the absolute value"),
    "l2_half": Mistake("l2_penalty", '''
def l2_penalty(params):
    return 0.5 * sum((w ** 2).sum() for w in params)
''', "L2 with a factor 1/2"),
    "l2_norm": Mistake("l2_penalty", '''
def l2_penalty(params):
    return sum(torch.norm(w) for w in params)
''', "L2 as the norm instead of its square"),
    "l2_item": Mistake("l2_penalty", '''
def l2_penalty(params):
    return sum((w ** 2).sum().item() for w in params)
''', "a Python float instead of a differentiable tensor"),
    "seed_decay": Mistake("sgd_step", _sgd('''
    with torch.no_grad():
        for p, buf in zip(params, buffers):
            d = p.grad
            if momentum != 0:
                buf = d.clone() if buf is None else buf.mul_(momentum).add_(d)
                d = buf
            else:
                buf = None
            p.mul_(1 - weight_decay)  # the seed's w(1 - λ): no learning rate on the decay
            p.add_(d, alpha=-lr)
            new_buffers.append(buf)
    return new_buffers
'''), "weight decay without the learning rate (the seed's formula)"),
    "decay_after_momentum": Mistake("sgd_step", _sgd('''
    with torch.no_grad():
        for p, buf in zip(params, buffers):
            d = p.grad
            if momentum != 0:
                buf = d.clone() if buf is None else buf.mul_(momentum).add_(d)
                d = buf
            else:
                buf = None
            p.add_(d + weight_decay * p, alpha=-lr)
            new_buffers.append(buf)
    return new_buffers
'''), "decay added after the momentum buffer"),
    "ema_momentum": Mistake("sgd_step", _sgd('''
    with torch.no_grad():
        for p, buf in zip(params, buffers):
            d = p.grad + weight_decay * p
            if momentum != 0:
                buf = d.clone() if buf is None else momentum * buf + (1 - momentum) * d
                d = buf
            else:
                buf = None
            p.add_(d, alpha=-lr)
            new_buffers.append(buf)
    return new_buffers
'''), "a dampened (moving-average) momentum buffer"),
    "rebound": Mistake("sgd_step", _sgd('''
    for p, buf in zip(params, buffers):
        d = p.grad + weight_decay * p
        if momentum != 0:
            buf = d.clone() if buf is None else momentum * buf + d
            d = buf
        else:
            buf = None
        p = p - lr * d
        new_buffers.append(buf)
    return new_buffers
'''), "parameters rebound instead of updated in place"),
    "grad_in_place": Mistake("sgd_step", _sgd('''
    with torch.no_grad():
        for p, buf in zip(params, buffers):
            d = p.grad
            if weight_decay != 0:
                d.add_(p, alpha=weight_decay)
            if momentum != 0:
                buf = d.clone() if buf is None else buf.mul_(momentum).add_(d)
                d = buf
            else:
                buf = None
            p.add_(d, alpha=-lr)
            new_buffers.append(buf)
    return new_buffers
'''), "the decay added to p.grad in place"),
    "uses_torch_optim": Mistake("sgd_step", _sgd('''
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    for p, buf in zip(params, buffers):
        if buf is not None:
            opt.state[p]["momentum_buffer"] = buf
    opt.step()
    return [opt.state[p].get("momentum_buffer") for p in params]
'''), "torch.optim.SGD called inside sgd_step"),
    "uses_functional_sgd": Mistake("sgd_step", _sgd('''
    from torch.optim._functional import sgd
    params = [p for p in params]
    grads = [p.grad for p in params]
    buffers = list(buffers)
    with torch.no_grad():
        sgd(params, grads, buffers, weight_decay=weight_decay, momentum=momentum, lr=lr,
            dampening=0.0, nesterov=False, maximize=False)
    return buffers if momentum != 0 else [None] * len(params)
'''), "torch.optim's functional sgd called inside sgd_step"),
    "crosses_zero": Mistake("soft_threshold", '''
def soft_threshold(w, threshold):
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    return w - threshold * torch.sign(w)
''', "soft threshold that lets small weights cross zero"),
    "zeroes_negatives": Mistake("soft_threshold", '''
def soft_threshold(w, threshold):
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    return torch.clamp(w - threshold, min=0)
''', "soft threshold that zeroes every negative weight"),
    "uses_softshrink": Mistake("soft_threshold", '''
def soft_threshold(w, threshold):
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    return F.softshrink(w, threshold)
''', "F.softshrink called inside soft_threshold"),
    "decays_biases": Mistake("no_decay_param_groups", _GROUPS_HEAD + '''
    decay = [p for p in model.parameters() if p.requires_grad]
''' + _GROUPS_TAIL, "every parameter decayed, biases included"),
    "decays_norm_weights": Mistake("no_decay_param_groups", _GROUPS_HEAD + '''
    for name, p in model.named_parameters():
        (no_decay if name.endswith("bias") else decay).append(p)
''' + _GROUPS_TAIL, "sorted by name: normalisation weights decayed"),
    "loses_params": Mistake("no_decay_param_groups", _GROUPS_HEAD + '''
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            decay.append(m.weight)
            if m.bias is not None:
                no_decay.append(m.bias)
''' + _GROUPS_TAIL, "only Linear/Conv parameters collected: norm parameters lost"),
    "lists_twice": Mistake("no_decay_param_groups", _GROUPS_HEAD + '''
    for m in model.modules():
        for p in m.parameters(recurse=False):
            (decay if p.ndim >= 2 else no_decay).append(p)
''' + _GROUPS_TAIL, "a shared weight listed once per module that holds it"),
    "ndim_eq_1": Mistake("no_decay_param_groups", _GROUPS_HEAD + '''
    for p in model.parameters():
        (no_decay if p.ndim == 1 else decay).append(p)
''' + _GROUPS_TAIL, "only 1-dim parameters left undecayed: a 0-dim scalar is decayed"),
    "best_on_train": Mistake("best_weight_decay", '''
best_weight_decay = sweep["values"][sweep["train_loss"].mean(dim=1).argmin()].item()
''', "λ chosen by the training error"),
    "overfitting_index": Mistake("overfitting_starts", '''
overfitting_starts = int(sweep["val_history"][lambdas.index(0.0)].mean(dim=0).argmin())
''', "the position in the history instead of the iteration"),
    "overfitting_on_train": Mistake("overfitting_starts", '''
mean_train = sweep["train_history"][lambdas.index(0.0)].mean(dim=0)
overfitting_starts = int(sweep["steps"][mean_train.argmin()])
''', "the training loss's minimum instead of the validation loss's"),
}

# The demo class's "typical mistakes" student submits these (make demo).
DEMO = ("l2_half", "seed_decay", "zeroes_negatives")
