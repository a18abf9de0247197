"""Datasets: source snapshots named by content, schema validation with quarantine, labelled production rows
(feedback), the training window, importance weights toward a drifted window, the training set of one run with its
holdouts, and a first spec drafted from a data file."""
