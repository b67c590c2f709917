"""Tensor-level rules shared by the layers above (serving, packaging).

    batch.py   the batch axis: which symbol, if any, is Triton's (and deploykit's server's) batch dimension
"""
