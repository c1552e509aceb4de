"""03-dropout: every catalogued mistake loses the stated points with a message that names it."""

from helpers import mistake_tests

A = "03-dropout"

# mistake -> ({test cell: points lost}, {test cell: fragment its message must contain})
EXPECTED = {
    "no_rescale": ({"test_dropout": 2}, {"test_dropout": "not rescaled"}),
    "keep_probability": ({"test_dropout": 2}, {"test_dropout": "probability of dropping"}),
    "eval_active": ({"test_dropout_eval": 1}, {"test_dropout_eval": "still zeroed units in evaluation"}),
    "eval_rescale": ({"test_dropout_eval": 1}, {"test_dropout_eval": "rescaled the input in evaluation"}),
    "seeded_mask": ({"test_dropout_randomness": 2}, {"test_dropout_randomness": "same mask"}),
    "cached_mask": ({"test_dropout_randomness": 2}, {"test_dropout_randomness": "cached mask"}),
    "ignores_generator": ({"test_dropout_randomness": 2}, {"test_dropout_randomness": "ignores its `generator`"}),
    "nan_at_one": ({"test_dropout_edge_cases": 1}, {"test_dropout_edge_cases": "returned NaN"}),
    "accepts_bad_p": ({"test_dropout_edge_cases": 1}, {"test_dropout_edge_cases": "not a probability"}),
    "in_place": ({"test_dropout": 2, "test_dropout_edge_cases": 1},
                 {"test_dropout": "in place", "test_dropout_edge_cases": "in place"}),
    "exact_count": ({"test_dropout_randomness": 2}, {"test_dropout_randomness": "independently"}),
    "mask_shared_over_batch": ({"test_dropout": 2, "test_dropout_randomness": 2},
                               {"test_dropout": "broadcast over the batch",
                                "test_dropout_randomness": "broadcast over the batch"}),
    "mask_shared_over_features": ({"test_dropout": 2, "test_dropout_randomness": 2},
                                  {"test_dropout": "shared by every feature",
                                   "test_dropout_randomness": "shared by every feature"}),
    "calls_builtin": ({"test_dropout": 2, "test_dropout_eval": 1, "test_dropout_edge_cases": 1,
                       "test_dropout_randomness": 2},
                      {"test_dropout": "PyTorch's own dropout", "test_dropout_randomness": "PyTorch's own dropout"}),
    "module_ignores_training": ({"test_Dropout": 1, "test_Dropout_mode": 1},
                                {"test_Dropout": "ignores self.training", "test_Dropout_mode": "self.training"}),
    "module_grad_mode": ({"test_Dropout": 1, "test_Dropout_mode": 1},
                         {"test_Dropout_mode": "torch.is_grad_enabled()"}),
    "module_uses_nn_dropout": ({"test_Dropout": 1, "test_Dropout_mode": 1},
                               {"test_Dropout": "PyTorch's own dropout"}),
    "mlp_dropout_after_last": ({"test_DropoutMLP": 2}, {"test_DropoutMLP": "expected [Linear(1,7)"}),
    "mlp_fixed_p": ({"test_DropoutMLP": 2, "test_DropoutMLP_modes": 1}, {"test_DropoutMLP": "pass p to every dropout"}),
    "answer_with_rescale": ({"test_expected_without_rescale_value": 1},
                            {"test_expected_without_rescale_value": "*with* the rescale"}),
    "best_p_on_test": ({"test_best_p_value": 1}, {"test_best_p_value": "smallest *test* error"}),
    "variance_ratio_inverted": ({"test_variance_ratio_value": 1}, {"test_variance_ratio_value": "inverse ratio"}),
    "variance_over_grid": ({"test_variance_ratio_value": 1}, {"test_variance_ratio_value": "along each curve"}),
}

# The questions' tests read the sweep the notebook ran: run it before their answers.


test_every_mistake_has_an_expectation, test_mistake_is_caught_and_named = mistake_tests(A, EXPECTED)
