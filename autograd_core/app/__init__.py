"""The ``autograd-core`` command-line app: the one place that uses the engine,
``nn`` and ``optim`` together.

- :mod:`.train` trains an MLP or a CNN (the training loop);
- :mod:`.models` builds those networks and checks their options;
- :mod:`.run_folder` writes the run's files and reads a run folder back (``load_run``);
- :mod:`.graph` draws the graph of an expression over named scalars;
- :mod:`.expression` is the safe parser behind it (an allow-list, never ``eval``);
- :mod:`.export` writes a run's network for PyTorch or ONNX Runtime;
- :mod:`.grade` runs exercise notebooks and says which exercises pass;
- :mod:`.data`, :mod:`.plots`, :mod:`.report` and :mod:`.files` are the parts.

Nothing in the engine imports this package.
"""
