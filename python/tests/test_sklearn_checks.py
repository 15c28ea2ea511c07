"""scikit-learn's estimator checks on both estimators; every expected
failure is listed with its reason."""
from sklearn.utils.estimator_checks import parametrize_with_checks

import gmle

EXPECTED_FAILED = {
    "GaussianClassifier": {
        "check_sample_weight_equivalence_on_dense_data":
            "the check's classes have fewer rows than features, so their "
            "covariances are singular and the default relative floor "
            "(1e-9 of each feature's variance) sets their smallest "
            "eigenvalues; the weighted and the repeated statistics differ "
            "by rounding (1e-16 of the variance), which is 1e-7 of a "
            "floored eigenvalue, and the joint log-likelihoods of about "
            "-1e10 then differ by 4e-7 relative, above the check's 1e-7. "
            "On data whose covariances are defined the two fits agree to "
            "1e-12 (test_classifier.py::test_weights_equal_repeats).",
        "check_non_transformer_estimators_n_iter":
            "max_iter is an EM option of mixtures (n_components > 1); one "
            "Gaussian per class is fitted in closed form, without "
            "iterations, so n_iter_ is set only for mixtures "
            "(test_classifier.py::test_mixture_per_class sets it).",
    },
}


@parametrize_with_checks(
    [gmle.GaussianClassifier(), gmle.GaussianMixture()],
    expected_failed_checks=lambda est: EXPECTED_FAILED.get(
        type(est).__name__, {}))
def test_sklearn_compatible(estimator, check):
    check(estimator)
