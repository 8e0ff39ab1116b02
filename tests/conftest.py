"""Settings shared by every test module."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def one_openmp_thread():
    """One OpenMP thread for scikit-learn (the classifier two-sample tests) in the whole run: on a busy 2-core
    machine its threads spin (75 s instead of 1 s for one classifier test, measured at load 12). TensorFlow's own
    thread pools are not OpenMP and are left alone."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="openmp"):
        yield
