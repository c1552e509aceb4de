"""Typical wrong answers for 03-dropout (see grader/mistakes/__init__.py)."""
from . import Mistake

_CHECK = """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
"""

MISTAKES = {
    "no_rescale": Mistake("dropout", f'''
def dropout(x, p=0.5, training=True, generator=None):{_CHECK}
    if not training or p == 0:
        return x
    mask = torch.rand(x.shape, generator=generator, dtype=x.dtype) >= p
    return x * mask
''', "survivors not divided by (1 - p)"),
    "keep_probability": Mistake("dropout", f'''
def dropout(x, p=0.5, training=True, generator=None):{_CHECK}
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    mask = (torch.rand(x.shape, generator=generator) < p).to(x.dtype)
    return x * mask / (1 - p)
''', "p used as the keep probability"),
    "eval_active": Mistake("dropout", f'''
def dropout(x, p=0.5, training=True, generator=None):{_CHECK}
    if p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    mask = (torch.rand(x.shape, generator=generator) >= p).to(x.dtype)
    return x * mask / (1 - p)
''', "dropout still active in eval mode"),
    "eval_rescale": Mistake("dropout", f'''
def dropout(x, p=0.5, training=True, generator=None):{_CHECK}
    if p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    if not training:
        return x / (1 - p)
    mask = (torch.rand(x.shape, generator=generator) >= p).to(x.dtype)
    return x * mask / (1 - p)
''', "rescaling in eval mode"),
    "seeded_mask": Mistake("dropout", f'''
def dropout(x, p=0.5, training=True, generator=None):{_CHECK}
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    torch.manual_seed(0)
    mask = (torch.rand(x.shape) >= p).to(x.dtype)
    return x * mask / (1 - p)
''', "the same mask on every call (seed set inside)"),
    "cached_mask": Mistake("dropout", f'''
_masks = {{}}

def dropout(x, p=0.5, training=True, generator=None):{_CHECK}
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    key = (tuple(x.shape), p)
    if key not in _masks:
        _masks[key] = (torch.rand(x.shape, generator=generator) >= p).to(x.dtype)
    return x * _masks[key] / (1 - p)
''', "the same mask on every call (cached)"),
    "ignores_generator": Mistake("dropout", f'''
def dropout(x, p=0.5, training=True, generator=None):{_CHECK}
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    mask = (torch.rand(x.shape) >= p).to(x.dtype)
    return x * mask / (1 - p)
''', "the generator argument ignored"),
    "nan_at_one": Mistake("dropout", f'''
def dropout(x, p=0.5, training=True, generator=None):{_CHECK}
    if not training or p == 0:
        return x
    mask = (torch.rand(x.shape, generator=generator) >= p).to(x.dtype)
    return x * mask / (1 - p)
''', "NaN at p = 1"),
    "accepts_bad_p": Mistake("dropout", '''
def dropout(x, p=0.5, training=True, generator=None):
    if not training or p <= 0:
        return x
    if p >= 1:
        return torch.zeros_like(x)
    mask = (torch.rand(x.shape, generator=generator) >= p).to(x.dtype)
    return x * mask / (1 - p)
''', "p outside [0, 1] accepted"),
    "in_place": Mistake("dropout", f'''
def dropout(x, p=0.5, training=True, generator=None):{_CHECK}
    if not training or p == 0:
        return x
    if p == 1:
        return x.zero_()
    mask = torch.rand(x.shape, generator=generator) < p
    x[mask] = 0
    return x.div_(1 - p)
''', "the input modified in place"),
    "exact_count": Mistake("dropout", f'''
def dropout(x, p=0.5, training=True, generator=None):{_CHECK}
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    flat = torch.ones(x.numel(), dtype=x.dtype)
    flat[torch.randperm(x.numel(), generator=generator)[: round(p * x.numel())]] = 0
    return x * flat.view(x.shape) / (1 - p)
''', "exactly p·n units dropped on every call"),
    "mask_shared_over_batch": Mistake("dropout", f'''
def dropout(x, p=0.5, training=True, generator=None):{_CHECK}
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    mask = (torch.rand(1, x.shape[-1], generator=generator) >= p).to(x.dtype)  # one row for the batch
    return x * mask / (1 - p)
''', "a mask of shape (1, D) broadcast over the batch"),
    "mask_shared_over_features": Mistake("dropout", f'''
def dropout(x, p=0.5, training=True, generator=None):{_CHECK}
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    mask = (torch.rand(x.shape[0], 1, generator=generator) >= p).to(x.dtype)  # one value per example
    return x * mask / (1 - p)
''', "a mask of shape (N, 1) shared across the features"),
    "calls_builtin": Mistake("dropout", f'''
import torch.nn.functional as F

def dropout(x, p=0.5, training=True, generator=None):{_CHECK}
    return F.dropout(x, p=p, training=training)
''', "torch.nn.functional.dropout called"),
    "module_ignores_training": Mistake("Dropout", '''
class Dropout(nn.Module):
    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return dropout(x, self.p, training=True)
''', "Dropout ignores self.training"),
    "module_grad_mode": Mistake("Dropout", '''
class Dropout(nn.Module):
    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return dropout(x, self.p, training=torch.is_grad_enabled())
''', "mode read from torch.is_grad_enabled()"),
    "module_uses_nn_dropout": Mistake("Dropout", '''
class Dropout(nn.Module):
    def __init__(self, p=0.5):
        super().__init__()
        self.inner = nn.Dropout(p)

    def forward(self, x):
        return self.inner(x)
''', "nn.Dropout used inside Dropout"),
    "mlp_dropout_after_last": Mistake("DropoutMLP", '''
class DropoutMLP(nn.Module):
    def __init__(self, n_hidden, p=0.5):
        super().__init__()
        self.linears = nn.Sequential(
            nn.Linear(1, n_hidden), nn.ReLU(), Dropout(p),
            nn.Linear(n_hidden, n_hidden), nn.ReLU(), Dropout(p),
            nn.Linear(n_hidden, n_hidden), nn.ReLU(), Dropout(p),
            nn.Linear(n_hidden, 1), Dropout(p),
        )

    def forward(self, x):
        return self.linears(x)
''', "an extra dropout on the output"),
    "mlp_fixed_p": Mistake("DropoutMLP", '''
class DropoutMLP(nn.Module):
    def __init__(self, n_hidden, p=0.5):
        super().__init__()
        self.linears = nn.Sequential(
            nn.Linear(1, n_hidden), nn.ReLU(),
            Dropout(0.5), nn.Linear(n_hidden, n_hidden), nn.ReLU(),
            Dropout(0.5), nn.Linear(n_hidden, n_hidden), nn.ReLU(),
            Dropout(0.5), nn.Linear(n_hidden, 1),
        )

    def forward(self, x):
        return self.linears(x)
''', "p not passed to the dropout layers"),
    "answer_with_rescale": Mistake("expected_without_rescale", '''
expected_without_rescale = 10000
''', "the expected output with the rescale"),
    "best_p_on_test": Mistake("best_p", '''
best_p = sweep["values"][sweep["test_loss"].mean(dim=1).argmin()].item()
''', "p chosen on the test set"),
    "variance_ratio_inverted": Mistake("variance_ratio", '''
def variance_term(curves):
    return curves.var(dim=0, unbiased=False).mean()

variance_ratio = (variance_term(sweep["curves"][p_values.index(0.0)])
                  / variance_term(sweep["curves"][p_values.index(0.5)])).item()
''', "the inverse ratio of the variance terms"),
    "variance_over_grid": Mistake("variance_ratio", '''
variance_ratio = (sweep["curves"][p_values.index(0.5)].var(dim=1).mean()
                  / sweep["curves"][p_values.index(0.0)].var(dim=1).mean()).item()
''', "the variance along each curve instead of across the draws"),
}

# The demo class's "typical mistakes" student submits these (make demo).
DEMO = ("no_rescale", "module_ignores_training", "answer_with_rescale")
