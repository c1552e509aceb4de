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

_ADAMW_HEAD = '''
def adamw_step(params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, state=None):
    params = list(params)
    beta1, beta2 = betas
    if min(lr, eps, weight_decay) < 0 or not (0 <= beta1 < 1 and 0 <= beta2 < 1):
        raise ValueError("bad hyper-parameter")
    if state is None:
        state = [None] * len(params)
    elif len(state) != len(params):
        raise ValueError("one state per parameter")
    new_state = []
    with torch.no_grad():
        for p, s in zip(params, state):
            if p.grad is None:
                new_state.append(s)
                continue
            if s is None:
                s = {"step": 0, "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
            g = p.grad
'''
_ADAMW_TAIL = '''
            new_state.append({"step": t, "exp_avg": m, "exp_avg_sq": v})
    return new_state
'''


def _adamw(body: str) -> str:
    return _ADAMW_HEAD + body + _ADAMW_TAIL


# The correct body, which each mistake below changes in one place.
_ADAMW_BODY = '''
            t = s["step"] + 1
            p.mul_(1 - lr * weight_decay)
            m = beta1 * s["exp_avg"] + (1 - beta1) * g
            v = beta2 * s["exp_avg_sq"] + (1 - beta2) * g * g
            denom = v.sqrt() / math.sqrt(1 - beta2 ** t) + eps
            p.sub_(lr / (1 - beta1 ** t) * m / denom)'''


def _adamw_with(old: str, new: str) -> str:
    assert old in _ADAMW_BODY, old
    return _adamw(_ADAMW_BODY.replace(old, new))


MISTAKES_ADAMW = {
    "adamw_l2": Mistake("adamw_step", _adamw_with(
        "            p.mul_(1 - lr * weight_decay)\n",
        "            g = g + weight_decay * p  # Adam's L2: the decay goes through the moments\n",
    ), "decay added to the gradient (Adam with L2, not AdamW)"),
    "adamw_decay_no_lr": Mistake("adamw_step", _adamw_with(
        "p.mul_(1 - lr * weight_decay)", "p.mul_(1 - weight_decay)",
    ), "decoupled decay without the learning rate"),
    "adamw_no_bias_correction": Mistake("adamw_step", _adamw_with(
        "            denom = v.sqrt() / math.sqrt(1 - beta2 ** t) + eps\n"
        "            p.sub_(lr / (1 - beta1 ** t) * m / denom)",
        "            denom = v.sqrt() + eps\n"
        "            p.sub_(lr * m / denom)",
    ), "no bias correction of the moments"),
    "adamw_step_from_zero": Mistake("adamw_step", _adamw_with(
        '            t = s["step"] + 1\n',
        '            t = s["step"]  # 0 on the first step: 1 - beta ** 0 = 0\n',
    ).replace('            new_state.append({"step": t,',
              '            t += 1  # counted after the update\n'
              '            new_state.append({"step": t,'), "a step count starting from 0"),
    "adamw_eps_inside": Mistake("adamw_step", _adamw_with(
        "denom = v.sqrt() / math.sqrt(1 - beta2 ** t) + eps",
        "denom = torch.sqrt(v / (1 - beta2 ** t) + eps)",
    ), "eps inside the square root"),
    "adamw_moments_decayed": Mistake("adamw_step", _adamw_with(
        "            p.mul_(1 - lr * weight_decay)\n",
        "            g = g + weight_decay * p  # the moments fed the decayed gradient ...\n"
        "            p.mul_(1 - lr * weight_decay)  # ... and the decoupled decay as well\n",
    ), "the moments fed the decayed gradient g + λ·w"),
    "adamw_moments_decayed_late": Mistake("adamw_step", _adamw_with(
        "            p.mul_(1 - lr * weight_decay)\n",
        "            p.mul_(1 - lr * weight_decay)\n"
        "            g = g + weight_decay * p  # the decay term from the decayed weights, into the moments\n",
    ), "the moments fed g + λ·w after the decoupled decay"),
    "adamw_decay_after_step": Mistake("adamw_step", _adamw_with(
        "            p.mul_(1 - lr * weight_decay)\n", "",
    ).replace("* m / denom)\n", "* m / denom)\n            p.mul_(1 - lr * weight_decay)  # after the step\n"),
        "decay applied after the Adam step"),
    "adamw_uses_torch_optim": Mistake("adamw_step", _ADAMW_HEAD.split("    new_state = []")[0] + '''
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    for p, s in zip(params, state):
        if s is not None:
            opt.state[p] = {"step": torch.tensor(float(s["step"])), "exp_avg": s["exp_avg"],
                            "exp_avg_sq": s["exp_avg_sq"]}
    opt.step()
    return [{"step": int(opt.state[p]["step"]), "exp_avg": opt.state[p]["exp_avg"],
             "exp_avg_sq": opt.state[p]["exp_avg_sq"]} if p in opt.state else s
            for p, s in zip(params, state)]
''', "torch.optim.AdamW called inside adamw_step"),
    "adamw_uses_functional": Mistake("adamw_step", _ADAMW_HEAD.split("    new_state = []")[0] + '''
    from torch.optim._functional import adamw
    live = [i for i, p in enumerate(params) if p.grad is not None]
    for i in live:
        if state[i] is None:
            state[i] = {"step": 0, "exp_avg": torch.zeros_like(params[i]),
                        "exp_avg_sq": torch.zeros_like(params[i])}
    steps = [torch.tensor(float(state[i]["step"])) for i in live]
    with torch.no_grad():
        adamw([params[i] for i in live], [params[i].grad for i in live],
              [state[i]["exp_avg"] for i in live], [state[i]["exp_avg_sq"] for i in live], [], steps,
              amsgrad=False, beta1=beta1, beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps,
              maximize=False)
    for i, t in zip(live, steps):
        state[i] = {**state[i], "step": int(t)}
    return state
''', "torch.optim's functional adamw called inside adamw_step"),
}


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
    "decay_time_scale_adam": Mistake("decay_time_scale", '''
adam_w1 = decay_run["w1"]["Adam"][decay_run["lambdas"].index(0.1)]
decay_time_scale = int(decay_run["steps"][adam_w1 <= adam_w1[0] / math.e][0])
''', "read from Adam's run instead of AdamW's"),
    "decay_time_scale_half": Mistake("decay_time_scale", '''
adamw_w1 = decay_run["w1"]["AdamW"][decay_run["lambdas"].index(0.1)]
decay_time_scale = int(decay_run["steps"][adamw_w1 <= adamw_w1[0] / 2][0])
''', "the half-life instead of the time to 1/e"),
    "decay_time_scale_last_above": Mistake("decay_time_scale", '''
adamw_w1 = decay_run["w1"]["AdamW"][decay_run["lambdas"].index(0.1)]
decay_time_scale = int(decay_run["steps"][adamw_w1 > adamw_w1[0] / math.e][-1])
''', "the last step above 1/e instead of the first at or below"),
}
MISTAKES.update(MISTAKES_ADAMW)

# The demo class's "typical mistakes" student submits these (make demo).
DEMO = ("l2_half", "seed_decay", "adamw_l2", "zeroes_negatives")
