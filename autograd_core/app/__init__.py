"""The ``autograd-core`` command-line app: the one place that uses the engine,
``nn`` and ``optim`` together.

- :mod:`.train` trains an MLP and writes the run's files;
- :mod:`.graph` draws the graph of an expression over named scalars;
- :mod:`.expression` is the safe parser behind it (an allow-list, never ``eval``);
- :mod:`.data`, :mod:`.plots`, :mod:`.report` and :mod:`.files` are the parts.

Nothing in the engine imports this package.
"""
