"""Datasets: source snapshots named by content, schema validation with quarantine, labelled production rows
(feedback), the training window, and the training set of one run with its holdouts."""
