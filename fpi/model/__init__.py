"""The failure-point classifier: features, training, persistence, registry, evaluation and explanations."""
