"""The attacks of issue 19, one module per surface: each module holds ``ATTACKS``, a list of ``Attack``."""
