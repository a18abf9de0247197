"""Specs to ``dagster.Definitions``: a folder of spec files, or one spec as a Dagster Component."""
