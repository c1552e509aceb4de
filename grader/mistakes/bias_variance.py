"""Typical wrong answers for 01-bias-variance (see grader/mistakes/__init__.py)."""
from . import Mistake

_SHAPE_CHECK = """
    if y_hat.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(y_hat.shape)} and {tuple(y.shape)}")
"""

_OBJ_CHECK = """
    if l1 < 0 or l2 < 0:
        raise ValueError(f"coefficients must be >= 0, got l1={l1}, l2={l2}")
"""

_SP_HEAD = """
def sample_predictions(fit, f, x_train, x_eval, noise_std, n_datasets, generator=None):
    clean = f(x_train)
    rows = []
"""

_BV_CHECK = """
    if preds.dim() != 2 or f_true.shape != preds.shape[1:]:
        raise ValueError(f"shapes {tuple(preds.shape)} and {tuple(f_true.shape)} do not match")
"""

MISTAKES = {
    # ----------------------------------------------------------------- mse_cost
    "mse_broadcast": Mistake("mse_cost", '''
def mse_cost(y_hat, y):
    return ((y_hat - y) ** 2).mean()
''', "no shape check: (N, 1) against (N,) broadcasts to (N, N)"),
    "mse_sum": Mistake("mse_cost", f'''
def mse_cost(y_hat, y):{_SHAPE_CHECK}
    return ((y_hat - y) ** 2).sum()
''', "the sum of the squared errors where the mean is meant"),
    "mse_silent_reshape": Mistake("mse_cost", '''
def mse_cost(y_hat, y):
    return ((y_hat.reshape(-1) - y.reshape(-1)) ** 2).mean()
''', "mismatched shapes flattened silently instead of refused"),
    "mse_per_sample": Mistake("mse_cost", f'''
def mse_cost(y_hat, y):{_SHAPE_CHECK}
    return ((y_hat - y) ** 2).reshape(-1)
''', "the per-sample losses returned instead of the cost"),
    "mse_calls_builtin": Mistake("mse_cost", f'''
import torch.nn.functional as F

def mse_cost(y_hat, y):{_SHAPE_CHECK}
    return F.mse_loss(y_hat, y)
''', "torch.nn.functional.mse_loss called"),
    "mse_detached": Mistake("mse_cost", f'''
def mse_cost(y_hat, y):{_SHAPE_CHECK}
    return torch.tensor(((y_hat - y) ** 2).mean().item(), dtype=y_hat.dtype)
''', "the cost rebuilt from .item(): no gradient"),
    # ----------------------------------------------------------------- objective
    "objective_drops_l1": Mistake("objective", f'''
def objective(y_hat, y, params, l1=0.0, l2=0.0):{_OBJ_CHECK}
    obj = mse_cost(y_hat, y)
    for w in params:
        obj = obj + l2 * (w ** 2).sum()
    return obj
''', "the L1 penalty dropped"),
    "objective_drops_l2": Mistake("objective", f'''
def objective(y_hat, y, params, l1=0.0, l2=0.0):{_OBJ_CHECK}
    obj = mse_cost(y_hat, y)
    for w in params:
        obj = obj + l1 * w.abs().sum()
    return obj
''', "the L2 penalty dropped"),
    "objective_half_l2": Mistake("objective", f'''
def objective(y_hat, y, params, l1=0.0, l2=0.0):{_OBJ_CHECK}
    obj = mse_cost(y_hat, y)
    for w in params:
        obj = obj + l1 * w.abs().sum() + l2 / 2 * (w ** 2).sum()
    return obj
''', "a factor 1/2 on the L2 penalty"),
    "objective_params_twice": Mistake("objective", f'''
def objective(y_hat, y, params, l1=0.0, l2=0.0):{_OBJ_CHECK}
    penalty_1 = sum(w.abs().sum() for w in params)
    penalty_2 = sum((w ** 2).sum() for w in params)
    return mse_cost(y_hat, y) + l1 * penalty_1 + l2 * penalty_2
''', "params iterated twice: a generator is empty the second time"),
    "objective_first_only": Mistake("objective", f'''
def objective(y_hat, y, params, l1=0.0, l2=0.0):{_OBJ_CHECK}
    for w in params:
        return mse_cost(y_hat, y) + l1 * w.abs().sum() + l2 * (w ** 2).sum()
    return mse_cost(y_hat, y)
''', "only the first parameter tensor penalised"),
    "objective_detached_penalty": Mistake("objective", f'''
def objective(y_hat, y, params, l1=0.0, l2=0.0):{_OBJ_CHECK}
    penalty = 0.0
    for w in params:
        penalty += l1 * w.abs().sum().item() + l2 * (w ** 2).sum().item()
    return mse_cost(y_hat, y) + penalty
''', "penalties computed with .item(): no gradient reaches the weights"),
    "objective_negative_ok": Mistake("objective", '''
def objective(y_hat, y, params, l1=0.0, l2=0.0):
    obj = mse_cost(y_hat, y)
    for w in params:
        obj = obj + l1 * w.abs().sum() + l2 * (w ** 2).sum()
    return obj
''', "negative coefficients accepted"),
    "objective_own_cost": Mistake("objective", f'''
def objective(y_hat, y, params, l1=0.0, l2=0.0):{_OBJ_CHECK}
    obj = ((y_hat - y) ** 2).mean()
    for w in params:
        obj = obj + l1 * w.abs().sum() + l2 * (w ** 2).sum()
    return obj
''', "the cost recomputed without mse_cost's shape check"),
    # ----------------------------------------------------------------- sample_predictions
    "same_noise": Mistake("sample_predictions", _SP_HEAD + '''
    noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
    for _ in range(n_datasets):
        predictor = fit(x_train, clean + noise_std * noise)
        rows.append(predictor(x_eval).reshape(-1))
    return torch.stack(rows)
''', "the same noise reused for every training set"),
    "ignores_generator": Mistake("sample_predictions", _SP_HEAD + '''
    for _ in range(n_datasets):
        noise = torch.randn(clean.shape, dtype=clean.dtype)
        predictor = fit(x_train, clean + noise_std * noise)
        rows.append(predictor(x_eval).reshape(-1))
    return torch.stack(rows)
''', "the generator argument ignored"),
    "seeded_inside": Mistake("sample_predictions", _SP_HEAD + '''
    g = torch.Generator().manual_seed(0) if generator is None else generator
    for _ in range(n_datasets):
        noise = torch.randn(clean.shape, generator=g, dtype=clean.dtype)
        predictor = fit(x_train, clean + noise_std * noise)
        rows.append(predictor(x_eval).reshape(-1))
    return torch.stack(rows)
''', "a fixed seed when no generator is given: the same data on every call"),
    "noise_broadcast": Mistake("sample_predictions", _SP_HEAD + '''
    for _ in range(n_datasets):
        noise = torch.randn(len(x_train), generator=generator, dtype=clean.dtype)
        predictor = fit(x_train, clean + noise_std * noise)
        rows.append(predictor(x_eval).reshape(-1))
    return torch.stack(rows)
''', "noise of shape (N,) added to f(x_train) of shape (N, 1): labels (N, N)"),
    "noise_variance_as_std": Mistake("sample_predictions", _SP_HEAD + '''
    for _ in range(n_datasets):
        noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
        predictor = fit(x_train, clean + noise_std ** 2 * noise)
        rows.append(predictor(x_eval).reshape(-1))
    return torch.stack(rows)
''', "noise scaled by noise_std ** 2"),
    "uniform_noise": Mistake("sample_predictions", _SP_HEAD + '''
    for _ in range(n_datasets):
        noise = torch.rand(clean.shape, generator=generator, dtype=clean.dtype)
        predictor = fit(x_train, clean + noise_std * noise)
        rows.append(predictor(x_eval).reshape(-1))
    return torch.stack(rows)
''', "uniform noise from torch.rand instead of normal"),
    "predictions_not_flattened": Mistake("sample_predictions", _SP_HEAD + '''
    for _ in range(n_datasets):
        noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
        predictor = fit(x_train, clean + noise_std * noise)
        rows.append(predictor(x_eval))
    return torch.stack(rows)
''', "predictions of shape (M, 1) stacked without flattening"),
    # ----------------------------------------------------------------- decomposition
    "bias_as_mse": Mistake("bias_variance_decomposition", f'''
def bias_variance_decomposition(preds, f_true, noise_var):{_BV_CHECK}
    bias2 = ((preds - f_true) ** 2).mean().item()
    variance = preds.var(dim=0, correction=0).mean().item()
    return {{"bias2": bias2, "variance": variance, "noise": float(noise_var),
            "expected_error": bias2 + variance + float(noise_var)}}
''', "bias² computed as the MSE of all predictions (variance mixed in)"),
    "variance_across_points": Mistake("bias_variance_decomposition", f'''
def bias_variance_decomposition(preds, f_true, noise_var):{_BV_CHECK}
    bias2 = ((preds.mean(dim=0) - f_true) ** 2).mean().item()
    variance = preds.var(dim=1, correction=0).mean().item()
    return {{"bias2": bias2, "variance": variance, "noise": float(noise_var),
            "expected_error": bias2 + variance + float(noise_var)}}
''', "variance taken across points instead of across datasets"),
    "bias_not_squared": Mistake("bias_variance_decomposition", f'''
def bias_variance_decomposition(preds, f_true, noise_var):{_BV_CHECK}
    bias = (preds.mean(dim=0) - f_true).mean().item()
    variance = preds.var(dim=0, correction=0).mean().item()
    return {{"bias2": bias, "variance": variance, "noise": float(noise_var),
            "expected_error": bias + variance + float(noise_var)}}
''', "the bias not squared (the seed's formula)"),
    "unbiased_variance": Mistake("bias_variance_decomposition", f'''
def bias_variance_decomposition(preds, f_true, noise_var):{_BV_CHECK}
    bias2 = ((preds.mean(dim=0) - f_true) ** 2).mean().item()
    variance = preds.var(dim=0).mean().item()
    return {{"bias2": bias2, "variance": variance, "noise": float(noise_var),
            "expected_error": bias2 + variance + float(noise_var)}}
''', "variance divided by n_datasets - 1"),
    "tensors_not_floats": Mistake("bias_variance_decomposition", f'''
def bias_variance_decomposition(preds, f_true, noise_var):{_BV_CHECK}
    mean_pred = preds.mean(dim=0)
    bias2 = ((mean_pred - f_true) ** 2).mean()
    variance = ((preds - mean_pred) ** 2).mean()
    return {{"bias2": bias2, "variance": variance, "noise": noise_var,
            "expected_error": bias2 + variance + noise_var}}
''', "0-dim tensors returned instead of floats"),
    "no_shape_check": Mistake("bias_variance_decomposition", '''
def bias_variance_decomposition(preds, f_true, noise_var):
    mean_pred = preds.mean(dim=0)
    bias2 = ((mean_pred - f_true) ** 2).mean().item()
    variance = ((preds - mean_pred) ** 2).mean().item()
    return {"bias2": bias2, "variance": variance, "noise": float(noise_var),
            "expected_error": bias2 + variance + float(noise_var)}
''', "f_true of shape (P, 1) broadcast silently"),
    # ----------------------------------------------------------------- the question
    "answer_train_test_gap": Mistake("variance_means", '''
variance_means = "a"
''', "variance read as the gap between test and training loss"),
    "answer_noise": Mistake("variance_means", '''
variance_means = "c"
''', "variance read as the noise variance"),
    "answer_not_a_letter": Mistake("variance_means", '''
variance_means = 2
''', "a number instead of a letter"),
    # ------------------------------------------------------- the questions on the run
    "lambda_lowest_variance": Mistake("best_lambda", '''
best_lambda = lams[min(range(len(lams)), key=lambda i: lam_rows[i]["variance"])]
''', "the lambda with the lowest variance, not the lowest total"),
    "lambda_not_in_sweep": Mistake("best_lambda", '''
best_lambda = 0.05
''', "a lambda the sweep did not try"),
    "removed_vs_weakest": Mistake("variance_removed", '''
variance_removed = lam_rows[0]["variance"] - lam_rows[best]["variance"]
''', "compared with the weakest plotted penalty, not with no penalty"),
    "removed_sign": Mistake("variance_removed", '''
variance_removed = lam_rows[best]["variance"] - deg_rows[9]["variance"]
''', "the drop with its sign reversed"),
    "removed_left": Mistake("variance_removed", '''
variance_removed = lam_rows[best]["variance"]
''', "the variance left, not the variance removed"),
}

# The demo class's "typical mistakes" student submits these (make demo).
DEMO = ("mse_sum", "same_noise", "bias_as_mse", "answer_train_test_gap")
