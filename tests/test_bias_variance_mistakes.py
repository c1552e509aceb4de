"""01-bias-variance: every catalogued mistake loses the stated points with a message that names
it, and correct answers written differently from the solution earn full marks."""
import pytest

from grader.score import score_in_process
from helpers import mistake_tests

A = "01-bias-variance"

# mistake -> ({test cell: points lost}, {test cell: fragment its message must contain})
EXPECTED = {
    "mse_broadcast": ({"test_mse_cost_shapes": 1}, {"test_mse_cost_shapes": "broadcast to shape (6, 6)"}),
    "mse_sum": ({"test_mse_cost": 1}, {"test_mse_cost": "sum of the squared errors"}),
    "mse_silent_reshape": ({"test_mse_cost_shapes": 1}, {"test_mse_cost_shapes": "reshaped the inputs"}),
    "mse_per_sample": ({"test_mse_cost": 1}, {"test_mse_cost": "one per sample"}),
    "mse_calls_builtin": ({"test_mse_cost": 1}, {"test_mse_cost": "PyTorch's own mse_loss"}),
    "mse_detached": ({"test_mse_cost": 1}, {"test_mse_cost": "does not track gradients"}),
    "objective_drops_l1": ({"test_objective": 2}, {"test_objective": "dropped the L1 penalty"}),
    "objective_drops_l2": ({"test_objective": 2}, {"test_objective": "dropped the L2 penalty"}),
    "objective_half_l2": ({"test_objective": 2}, {"test_objective": "halved the L2 penalty"}),
    "objective_params_twice": ({"test_objective": 2}, {"test_objective": "iterated twice"}),
    "objective_first_only": ({"test_objective": 2}, {"test_objective": "only the first tensor"}),
    "objective_detached_penalty": ({"test_objective": 2}, {"test_objective": "no gradient reaches the parameters"}),
    "objective_negative_ok": ({"test_objective_validation": 1},
                              {"test_objective_validation": "accepted l1=-0.1"}),
    "objective_own_cost": ({"test_objective_validation": 1}, {"test_objective_validation": "broadcast to (5, 5)"}),
    "same_noise": ({"test_sample_predictions": 2, "test_sample_predictions_randomness": 2},
                   {"test_sample_predictions": "same noise for every training set",
                    "test_sample_predictions_randomness": "same noise for every training set"}),
    "ignores_generator": ({"test_sample_predictions_randomness": 2},
                          {"test_sample_predictions_randomness": "ignores its `generator`"}),
    "seeded_inside": ({"test_sample_predictions_randomness": 2},
                      {"test_sample_predictions_randomness": "re-seeded inside"}),
    "noise_broadcast": ({"test_sample_predictions": 2, "test_sample_predictions_randomness": 2},
                        {"test_sample_predictions": "broadcast to (10, 10)"}),
    "noise_variance_as_std": ({"test_sample_predictions_randomness": 2},
                              {"test_sample_predictions_randomness": "the variance, was used as the standard deviation"}),
    "uniform_noise": ({"test_sample_predictions_randomness": 2},
                      {"test_sample_predictions_randomness": "uniform"}),
    "predictions_not_flattened": ({"test_sample_predictions": 2, "test_sample_predictions_randomness": 2},
                                  {"test_sample_predictions": "flatten"}),
    "bias_as_mse": ({"test_bias_variance_decomposition": 2},
                    {"test_bias_variance_decomposition": "mixes the variance in"}),
    "variance_across_points": ({"test_bias_variance_decomposition": 2, "test_bias_variance_decomposition_validation": 1},
                               {"test_bias_variance_decomposition": "across the points (dim 1) instead of across the training sets"}),
    "bias_not_squared": ({"test_bias_variance_decomposition": 2},
                         {"test_bias_variance_decomposition": "without the square"}),
    "unbiased_variance": ({"test_bias_variance_decomposition": 2},
                          {"test_bias_variance_decomposition": "n_datasets - 1"}),
    "tensors_not_floats": ({"test_bias_variance_decomposition": 2, "test_bias_variance_decomposition_validation": 1},
                           {"test_bias_variance_decomposition": "not a Python float"}),
    "no_shape_check": ({"test_bias_variance_decomposition_validation": 1},
                       {"test_bias_variance_decomposition_validation": "shape (6, 1) broadcast"}),
    "answer_train_test_gap": ({"test_variance_means": 1}, {"test_variance_means": "gap between test and training loss"}),
    "answer_noise": ({"test_variance_means": 1}, {"test_variance_means": "noise* term"}),
    "answer_not_a_letter": ({"test_variance_means": 1}, {"test_variance_means": "not a string"}),
    # the questions, answered wrongly from the notebook's own run
    "lambda_lowest_variance": ({"test_best_lambda": 1}, {"test_best_lambda": "lowest, not the total"}),
    "lambda_not_in_sweep": ({"test_best_lambda": 1}, {"test_best_lambda": "not one of the lambdas"}),
    "removed_vs_weakest": ({"test_variance_removed": 1}, {"test_variance_removed": "not with no penalty"}),
    "removed_sign": ({"test_variance_removed": 1}, {"test_variance_removed": "sign reversed"}),
    "removed_left": ({"test_variance_removed": 1}, {"test_variance_removed": "variance left"}),
}


test_every_mistake_has_an_expectation, test_mistake_is_caught_and_named = mistake_tests(A, EXPECTED)


# Correct answers that differ from the solution: other formulas, float64 work, noise drawn in
# one call of shape (n_datasets, N) with torch.normal, predictors stored and evaluated later.
ALTERNATIVES = [
    {
        "mse_cost": '''
def mse_cost(y_hat, y):
    if tuple(y_hat.shape) != tuple(y.shape):
        raise ValueError("shape mismatch: %s vs %s" % (tuple(y_hat.shape), tuple(y.shape)))
    d = (y_hat - y).reshape(-1)
    return torch.dot(d, d) / d.numel()
''',
        "objective": '''
def objective(y_hat, y, params, l1=0.0, l2=0.0):
    if min(l1, l2) < 0:
        raise ValueError(f"negative coefficient: l1={l1}, l2={l2}")
    params = list(params)
    reg = sum(l1 * torch.linalg.vector_norm(w, 1) + l2 * torch.linalg.vector_norm(w) ** 2 for w in params)
    return mse_cost(y_hat, y) + reg
''',
        "sample_predictions": '''
def sample_predictions(fit, f, x_train, x_eval, noise_std, n_datasets, generator=None):
    if n_datasets < 1 or noise_std < 0:
        raise ValueError("need n_datasets >= 1 and noise_std >= 0")
    clean = f(x_train).to(torch.float64)
    noise = torch.normal(0.0, noise_std, size=(n_datasets, *clean.shape), generator=generator,
                         dtype=torch.float64)
    predictors = [fit(x_train, clean + e) for e in noise]
    return torch.stack([torch.as_tensor(p(x_eval)).flatten() for p in predictors])
''',
        "bias_variance_decomposition": '''
def bias_variance_decomposition(preds, f_true, noise_var):
    if preds.ndim != 2 or f_true.ndim != 1 or f_true.shape[0] != preds.shape[1]:
        raise ValueError(f"bad shapes {tuple(preds.shape)}, {tuple(f_true.shape)}")
    p = preds.double()
    avg = p.mean(0)
    bias2 = float(((avg - f_true.double()) ** 2).mean())
    variance = float(p.var(dim=0, correction=0).mean())
    return dict(bias2=bias2, variance=variance, noise=noise_var, expected_error=bias2 + variance + noise_var)
''',
        "variance_means": 'variance_means = " B "\n',
    },
    {
        "mse_cost": '''
def mse_cost(y_hat, y):
    if y_hat.shape != y.shape:
        raise ValueError(f"{y_hat.shape} != {y.shape}")
    return torch.mean(torch.square(y_hat - y))
''',
        "objective": '''
def objective(y_hat, y, params, l1=0.0, l2=0.0):
    if l1 < 0:
        raise ValueError(f"l1 must be >= 0, got {l1}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    total = mse_cost(y_hat, y)
    for w in params:
        if l1:
            total = total + l1 * torch.sum(torch.abs(w))
        if l2:
            total = total + l2 * torch.sum(w * w)
    return total
''',
        "sample_predictions": '''
def sample_predictions(fit, f, x_train, x_eval, noise_std, n_datasets, generator=None):
    out = None
    for d in range(n_datasets):
        y = f(x_train) + noise_std * torch.randn(x_train.shape, generator=generator)
        pred = fit(x_train, y)(x_eval).reshape(-1)
        if out is None:
            out = torch.empty(n_datasets, pred.numel(), dtype=pred.dtype)
        out[d] = pred
    return out
''',
        "bias_variance_decomposition": '''
def bias_variance_decomposition(preds, f_true, noise_var):
    if preds.dim() != 2 or f_true.shape != (preds.shape[1],):
        raise ValueError("shapes")
    mse_all = ((preds - f_true) ** 2).mean()
    variance = ((preds - preds.mean(0, keepdim=True)) ** 2).mean()
    bias2 = mse_all - variance
    return {"bias2": bias2.item(), "variance": variance.item(), "noise": float(noise_var),
            "expected_error": mse_all.item() + float(noise_var)}
''',
        "variance_means": "variance_means = '(b)'\n",
    },
]


@pytest.mark.parametrize("answers", ALTERNATIVES, ids=["vector-norms-torch.normal", "square-randn-mse-minus-var"])
def test_correct_alternatives_score_full_marks(answers):
    # the questions read the run, which calls these answers: it runs as in the notebook
    results = score_in_process(A, "bias_variance", answers=answers)
    lost = {gid: r.message for gid, r in results.items() if r.score < r.max_score}
    assert not lost, lost
    assert sum(r.score for r in results.values()) == 15


def test_solution_scores_full_marks():
    results = score_in_process(A, "bias_variance")
    assert {"test_best_lambda", "test_variance_removed"} <= set(results)
    assert {gid: r.score for gid, r in results.items()} == {gid: r.max_score for gid, r in results.items()}


def _fails(check, *args):
    try:
        check(*args)
    except AssertionError as exc:
        return str(exc)
    return None


def _row(bias2, variance):
    return {"bias2": bias2, "variance": variance, "noise": 0.25, "expected_error": bias2 + variance + 0.25}


LAMS = [1e-6, 1e-3, 1e-1, 1e1]
LAM_ROWS = [_row(0.0001, 0.31), _row(0.0002, 0.12), _row(0.045, 0.05), _row(0.65, 0.02)]
DEG_ROWS = [_row(0.76, 0.03)] + [_row(0.0, 0.05)] * 8 + [_row(0.0035, 1.56)]


def test_best_lambda_is_recomputed_from_the_run():
    from grader.checks.bias_variance import check_best_lambda_format
    from grader.hidden.bias_variance import check_best_lambda

    assert _fails(check_best_lambda, 0.1, LAMS, LAM_ROWS) is None
    assert "the lowest" in _fails(check_best_lambda, 1e-3, LAMS, LAM_ROWS)
    assert "variance that is lowest, not the total" in _fails(check_best_lambda, 10.0, LAMS, LAM_ROWS)
    assert "not one of the lambdas" in _fails(check_best_lambda, 0.5, LAMS, LAM_ROWS)
    # another run, another answer
    other = [_row(0.0001, 0.31), _row(0.0002, 0.05), _row(0.045, 0.05), _row(0.65, 0.02)]
    assert _fails(check_best_lambda, 1e-3, LAMS, other) is None
    assert "not a number" in _fails(check_best_lambda_format, "c")
    assert "positive" in _fails(check_best_lambda_format, -1.0)


def test_variance_removed_is_recomputed_from_the_run():
    from grader.checks.bias_variance import check_variance_removed_format
    from grader.hidden.bias_variance import check_variance_removed

    right = 1.56 - 0.05
    assert _fails(check_variance_removed, right, DEG_ROWS, LAM_ROWS) is None
    assert _fails(check_variance_removed, right + 0.0015, DEG_ROWS, LAM_ROWS) is None
    assert "sign reversed" in _fails(check_variance_removed, -right, DEG_ROWS, LAM_ROWS)
    assert "weakest penalty plotted" in _fails(check_variance_removed, 0.31 - 0.05, DEG_ROWS, LAM_ROWS)
    assert "bias² the penalty added" in _fails(check_variance_removed, 0.045 - 0.0035, DEG_ROWS, LAM_ROWS)
    assert "variance left at the best lambda" in _fails(check_variance_removed, 0.05, DEG_ROWS, LAM_ROWS)
    assert "does not match your run" in _fails(check_variance_removed, 0.8, DEG_ROWS, LAM_ROWS)
    assert "not a number" in _fails(check_variance_removed_format, [1.0])
