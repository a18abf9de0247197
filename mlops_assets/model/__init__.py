"""What is trained and shipped: the feature transformer, the estimator it feeds, the deployable model, its
MLflow flavour, and the training entry point the trainer resources run."""
