"""``autograd-core``: train a network, draw its graph, step through its backprop.

The commands::

    autograd-core train                      # an MLP on iris, with every picture
    autograd-core train --data digits        # a small CNN on 8x8 handwritten digits
    autograd-core graph "(a*b + c) * f" --set a=2 --set b=-3 --set c=10 --set f=-2
    autograd-core export runs/<run> --to torch   # or --to onnx
    autograd-core grade notebooks/exercises/ex01_chain_rule.ipynb

``python -m autograd_core`` is the same program. The work itself is in
:mod:`autograd_core.app`; the parser takes its choices and limits from there
(the data sets, the networks, the optimizers), and ``nn`` and ``optim`` are
imported only when a command runs, so the engine never depends on them.
"""

from __future__ import annotations

import argparse
import sys

from .app.data import BUILTIN as DATASETS
from .app.models import ACTIVATIONS, MAX_CHANNELS, MAX_CONV_LAYERS, MODELS, DefaultWidths
from .app.train import OPTIMIZERS, SCHEDULES

MAX_HIDDEN_LAYERS = 64
MAX_SAMPLES = 1_000_000


def _channel_counts(text):
    """'8,16' -> [8, 16]: the CNN's output channels, one per convolution."""
    counts = []
    for part in text.split(","):
        try:
            counts.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give channel counts as integers separated by commas, e.g. 8,16") from None
    if not 1 <= len(counts) <= MAX_CONV_LAYERS:
        raise argparse.ArgumentTypeError(f"{text!r}: from 1 to {MAX_CONV_LAYERS} convolutions (each one halves the image)")
    if not all(1 <= n <= MAX_CHANNELS for n in counts):
        raise argparse.ArgumentTypeError(f"{text!r}: every convolution needs from 1 to {MAX_CHANNELS} channels")
    return counts


def _hidden_sizes(text):
    """'16,16' -> [16, 16]; '' or 'none' -> [] (no hidden layer: softmax regression)."""
    if text.strip().lower() in ("", "none"):
        return []
    sizes = []
    for part in text.split(","):
        try:
            size = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give layer widths as integers separated by commas, e.g. 16,16") from None
        if size < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: every layer needs at least one unit")
        sizes.append(size)
    if len(sizes) > MAX_HIDDEN_LAYERS:
        raise argparse.ArgumentTypeError(f"{len(sizes)} hidden layers: at most {MAX_HIDDEN_LAYERS}")
    return sizes


def _bounded(kind, low, high=None, low_open=False, high_open=True, what=""):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        too_low = value <= low if low_open else value < low
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high or value != value:  # the last test catches NaN
            raise argparse.ArgumentTypeError(f"{text!r}: {what}")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """The top-level parser. Options no command knows are reported by that
    command's parser, with its usage: argparse leaves them to the top level,
    whose usage line says nothing about the command's options."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.commands = {}  # command name -> its parser

    def parse_args(self, args=None, namespace=None):
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            self.commands.get(parsed.command, self).error(f"unrecognized arguments: {' '.join(unknown)}")
        return parsed


def build_parser():
    """The argument parser for every command (``build_parser().print_help()``).

    >>> build_parser().parse_args(["train", "--data", "moons"]).data
    'moons'
    """
    parser = _Parser(
        prog="autograd-core",
        description="Train a small network, draw its computation graph and step through its backpropagation.",
        epilog="Run 'autograd-core train' for the whole story on iris; 'autograd-core COMMAND -h' for options.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"autograd-core {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = {"train": _train_parser(commands), "graph": _graph_parser(commands),
                       "export": _export_parser(commands), "grade": _grade_parser(commands)}
    return parser


def _train_parser(commands):
    train = commands.add_parser(
        "train", help="train an MLP or a CNN and write weights, metrics, plots, its graph and a backprop player",
        description="Train an MLP classifier (or a small CNN on images) and write its weights, metrics.csv, "
                    "plots, the graph of one training step (SVG) and a backprop player of the first training "
                    "step (HTML) to an output folder.",
    )
    _data_options(train.add_argument_group("data"))
    _model_options(train.add_argument_group("model"))
    _optimisation_options(train.add_argument_group("optimisation"))
    output = train.add_argument_group("output")
    output.add_argument("--out", metavar="DIR", default=None, help="output folder (default: runs/<date>_<time>)")
    talk = output.add_mutually_exclusive_group()
    talk.add_argument("--quiet", action="store_true", help="no progress bar; print only the output folder")
    talk.add_argument("--jsonl", action="store_true", help="print one JSON object per line (start, epoch, done) for scripts")
    return train


def _data_options(data):
    source = data.add_mutually_exclusive_group()
    source.add_argument("--data", choices=DATASETS, default=None,
                        help="a built-in data set (default: iris); digits: 1,797 8x8 images of handwritten digits")
    source.add_argument("--csv", metavar="PATH", help="a CSV file: header row, numeric feature columns, one label column")
    data.add_argument("--label", metavar="COLUMN", help="the label column of --csv (default: the last column)")
    data.add_argument("--val-split", type=_bounded(float, 0.0, 1.0, what="must be in [0, 1)"), default=0.2,
                      metavar="FRACTION", help="share of each class held out for validation (default: 0.2; 0 for none)")
    data.add_argument("--samples", type=_bounded(int, 10, MAX_SAMPLES, high_open=False,
                                                 what=f"from 10 to {MAX_SAMPLES:,}"), default=None, metavar="N",
                      help="examples to generate for moons, spirals and blobs (default: the data set's own)")


def _model_options(model):
    model.add_argument("--model", choices=MODELS, default=None,
                       help="mlp: fully connected layers, for any data; cnn: convolutions and pooling, for images "
                            "(default: cnn for digits, mlp otherwise)")
    model.add_argument("--hidden", type=_hidden_sizes, default=DefaultWidths([16, 16]), metavar="SIZES",
                       help="MLP hidden layer widths, comma-separated (default: 16,16; 'none' for no hidden layer)")
    model.add_argument("--channels", type=_channel_counts, default=None, metavar="COUNTS",
                       help="CNN: output channels of each 3x3 convolution (each followed by the activation and "
                            "2x2 max pooling), comma-separated (default: 8,16)")
    model.add_argument("--activation", choices=ACTIVATIONS, default="relu", help="hidden-layer activation (default: relu)")
    model.add_argument("--batchnorm", action="store_true",
                       help="batch normalisation after each hidden linear layer (CNN: after each convolution)")
    model.add_argument("--dropout", type=_bounded(float, 0.0, 1.0, what="must be in [0, 1)"), default=0.0,
                       metavar="P", help="dropout probability after each hidden activation (CNN: before the last "
                                         "linear layer) (default: 0)")


def _optimisation_options(optimisation):
    optimisation.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="(default: adam)")
    optimisation.add_argument("--lr", type=_bounded(float, 0.0, low_open=True, what="must be positive"), default=None,
                              help="learning rate (default: 0.1 for sgd and adagrad, 1.0 for adadelta, 0.01 otherwise)")
    optimisation.add_argument("--momentum", type=_bounded(float, 0.0, 1.0, what="must be in [0, 1)"), default=None,
                              help="momentum for sgd (default 0.9) and rmsprop (default 0)")
    optimisation.add_argument("--schedule", choices=SCHEDULES, default="none", help="learning-rate schedule (default: none)")
    optimisation.add_argument("--batch-size", type=_bounded(int, 1, what="at least 1"), default=16, metavar="N",
                              help="examples per mini-batch (default: 16)")
    optimisation.add_argument("--epochs", type=_bounded(int, 1, what="at least 1"), default=100, metavar="N",
                              help="passes over the training data (default: 100)")
    optimisation.add_argument("--patience", type=_bounded(int, 0, what="0 or more"), default=20, metavar="N",
                              help="early stopping: stop after N epochs without a better validation loss and keep "
                                   "the best weights (default: 20; 0 turns it off)")
    optimisation.add_argument("--seed", type=_bounded(int, 0, what="0 or more (NumPy's seeds are non-negative)"),
                              default=0, help="random seed for the split, initialisation, shuffling and dropout "
                                              "(default: 0)")
    optimisation.add_argument("--eager", action="store_true", default=None,
                              help="run every step through the eager engine instead of the compiled step "
                                   "(same numbers, slower; see docs/compile.md)")


def _graph_parser(commands):
    graph = commands.add_parser(
        "graph", help="draw the graph of an expression over named scalars (SVG) and optionally its backprop player",
        description="Build the graph of an arithmetic expression over named scalars, run backward, and render it. "
                    "The expression is parsed, never evaluated: only numbers, the --set names, + - * / **, and the "
                    "engine's functions (exp, log, tanh, sigmoid, relu, ...) are allowed. Name intermediate results "
                    "with ';'-separated assignments: \"e = a*b; d = e + c; L = d*f\".",
    )
    graph.add_argument("expression", help="e.g. \"(a*b + c) * f\" or \"n = x1*w1 + x2*w2 + b; o = tanh(n)\"")
    graph.add_argument("--set", dest="assignments", action="append", default=[], metavar="NAME=NUMBER",
                       help="give a name its value (repeat for each name), e.g. --set a=2 --set b=-3")
    graph.add_argument("-o", "--output", default="graph.svg", metavar="PATH",
                       help="the picture to write; its extension picks the format: .svg (default), .png or .pdf")
    graph.add_argument("--html", metavar="PATH", default=None, help="also write the backprop player (self-contained HTML)")
    graph.add_argument("--no-backward", action="store_true", help="draw the forward graph only (no gradients)")
    return graph


def _export_parser(commands):
    export = commands.add_parser(
        "export", help="write a trained run's network for PyTorch (a torch.nn.Module) or ONNX Runtime",
        description="Export the network of a run folder (written by 'autograd-core train'): --to torch writes the "
                    "module's Python source and its weights, --to onnx an ONNX file (float32). The export is run "
                    "once and compared with the engine. Needs the optional packages: pip install -e \".[export]\".",
    )
    export.add_argument("run", metavar="RUN_FOLDER", help="a folder written by autograd-core train")
    export.add_argument("--to", choices=("torch", "onnx"), required=True, help="the format to write")
    export.add_argument("-o", "--output", default=None, metavar="PATH",
                        help="the file to write (default: model_torch.py and model_torch.pt, or model.onnx, "
                             "in the run folder)")
    return export


def _grade_parser(commands):
    grade = commands.add_parser(
        "grade", help="run exercise notebooks and list which exercises pass, with a hint for each that does not",
        description="Run each exercise notebook top to bottom in a fresh Python kernel (every cell, even after an "
                    "error) and print a table of its exercises: passed, or failed with a hint. Exit status 0 when "
                    "every exercise passes, 1 when some fail, 2 when a path is not a notebook.",
    )
    grade.add_argument("notebooks", nargs="+", metavar="NOTEBOOK", help="an .ipynb file (several: a summary follows)")
    grade.add_argument("--timeout", type=_bounded(int, 1, what="at least 1 second"), default=120, metavar="SECONDS",
                       help="stop a cell that runs longer than this and go on with the next (default: 120)")
    return grade


def main(argv=None):
    """Run the command line; returns the exit status (0 ok, 1 training diverged
    or an exercise failed, 2 bad input, 130 interrupted, 141 stdout closed by its reader).

    >>> main(["graph", "a*b", "--set", "a=2", "--set", "b=3", "-o", "ab.svg"])   # doctest: +SKIP
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from .app.errors import AppError
    from .app.report import terminal_safe

    try:
        if args.command == "train":
            from .app.train import train_command

            return train_command(args)
        if args.command == "export":
            from .app.export import export_command

            return export_command(args)
        if args.command == "grade":
            from .app.grade import grade_command

            return grade_command(args)
        from .app.graph import graph_command

        return graph_command(args)
    except AppError as exc:
        print(f"autograd-core: error: {terminal_safe(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autograd-core: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`autograd-core train --jsonl | head`):
        # stop quietly, as other Unix tools do, and keep Python from printing a
        # second error when it flushes stdout at exit.
        _silence_stdout()
        return 141


def _silence_stdout():
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (a notebook, a test's capture)
        pass


if __name__ == "__main__":  # python -m autograd_core.cli, as python -m autograd_core
    sys.exit(main())
