"""What is trained and shipped: the feature transformer, the estimator it feeds, the deployable model, the metrics
it is scored by, its MLflow flavour, and the training entry point the trainer resources run."""
