"""The base layer: shapes, dims, tensor specs, feeds and the batch axis. Imports nothing of deploykit but
``deploykit.errors`` (tools/import_layers.py checks it), so every layer above can use it.

    shapes.py  symbolic dims (DimExpr, parse_dim, resolve_shape), shape cases and the shape sweep
    spec.py    DimSpec (the one range type) and TensorSpec (the one tensor descriptor)
    feeds.py   a feed ({input name: array}) checked against the declared tensors
    batch.py   the batch axis: which symbol, if any, is Triton's (and deploykit's server's) batch dimension
"""
