"""Clean-data classifiers used only for evaluation: CAS and the feature network of the
class-wise Frechet distance. Trained here, on this project's data (no Inception weights)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .models import PlainCNNClassifier, PlainMLPClassifier


def make_eval_classifier(x_shape, num_classes: int):
    return PlainMLPClassifier(num_classes) if len(x_shape) == 2 else PlainCNNClassifier(num_classes)


def fit_classifier(key, x, y, num_classes: int, steps: int = 500, batch: int = 128, lr: float = 2e-3):
    """Train a clean classifier with Adam on (x, y); returns (model, params)."""
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    model = make_eval_classifier(x.shape, num_classes)
    key, k0 = jax.random.split(key)
    params = model.init(k0, x[:2])
    opt = optax.adam(lr)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, key):
        idx = jax.random.randint(key, (batch,), 0, x.shape[0])

        def loss_fn(p):
            logits = model.apply(p, x[idx])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean()

        loss, g = jax.value_and_grad(loss_fn)(params)
        upd, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, upd), opt_state, loss

    for i in range(steps):
        key, k = jax.random.split(key)
        params, opt_state, _ = step(params, opt_state, k)
    return model, params


def make_predictor(model, params, features: bool = False, batch: int = 1024):
    """x -> logits (or penultimate features), in batches, with ONE jitted function reused across calls
    (a new jit per call recompiles for every class and method of the evaluation)."""
    f = jax.jit(lambda xx: model.apply(params, xx, features=features))
    return lambda x: np.concatenate([np.asarray(f(jnp.asarray(x[i : i + batch]))) for i in range(0, len(x), batch)])


def predict(model, params, x, batch: int = 1024, features: bool = False):
    return make_predictor(model, params, features, batch)(x)


def accuracy(model, params, x, y) -> float:
    return float(np.mean(predict(model, params, x).argmax(-1) == np.asarray(y)))


def classification_accuracy_score(key, x_gen, y_gen, x_test, y_test, num_classes: int, steps: int = 500):
    """CAS (Ravuri & Vinyals 2019): train on generated (x, y), test on real held-out data."""
    model, params = fit_classifier(key, x_gen, y_gen, num_classes, steps)
    return accuracy(model, params, x_test, y_test)
