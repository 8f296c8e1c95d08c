"""How a run talks while it trains: a progress bar, nothing, or JSON lines.

All three reporters have the same methods, so the training loop does not care
which one it has. The bar goes to stderr (tqdm's habit) and summary lines to
stdout; JSON lines go to stdout, one object per line, for scripts.
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text):
    r"""`text` with control characters shown as ``\xNN``, so a file or class
    name cannot send escape sequences to the user's terminal (newlines and
    tabs stay).

    >>> terminal_safe("data\x1b]0;hi\x07.csv")
    'data\\x1b]0;hi\\x07.csv'
    """
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", str(text))


class Reporter:
    """Base reporter: prints human-readable lines to ``stream`` (stdout)."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stdout

    def info(self, text):
        """A line of human-readable information (setup, early stopping...)."""
        print(terminal_safe(text), file=self.stream, flush=True)

    def warn(self, text):
        """A problem the run works around (always shown, on stderr)."""
        print(f"warning: {terminal_safe(text)}", file=sys.stderr, flush=True)

    def start(self, epochs, batches_per_epoch):
        pass

    def batch(self, epoch, running_loss, running_accuracy):
        pass

    def epoch(self, metrics):
        pass

    def close(self):
        pass

    def event(self, name, **fields):
        """A machine-readable event; only the JSON-lines reporter shows these."""

    def finished(self, out_dir, files, summary):
        self.info(summary)
        self.info(f"Wrote to {out_dir}:")
        width = max(len(name) for name in files)
        for name, path in files.items():
            self.info(f"  {name.replace('_', ' '):<{width}}  {path}")


class BarReporter(Reporter):
    """A tqdm bar over epochs with the running loss and accuracy (works in notebooks).

    The numbers come before the bar, validation accuracy first, so a narrow
    terminal (80 columns) cuts the bar and the times, not the accuracy:
    ``training 12/100, val acc 93.3%, acc 95.0%, loss 0.1234, val loss 0.1456 |##| 00:01<00:08``
    """

    BAR_FORMAT = "{desc} {n_fmt}/{total_fmt}{postfix} |{bar}| {elapsed}<{remaining}"

    def __init__(self, stream=None, bar_file=None, ncols=None):
        super().__init__(stream)
        self.bar_file = bar_file
        self.ncols = ncols

    def start(self, epochs, batches_per_epoch):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=epochs, unit="epoch", desc="training", file=self.bar_file or sys.stderr,
                        bar_format=self.BAR_FORMAT, ncols=self.ncols, dynamic_ncols=self.ncols is None)

    def batch(self, epoch, running_loss, running_accuracy):
        # refresh=False: tqdm redraws at its own pace, not after every batch
        self.bar.set_postfix_str(self._numbers(None, running_accuracy, running_loss, None), refresh=False)

    def epoch(self, metrics):
        self.bar.set_postfix_str(self._numbers(metrics.get("val_accuracy"), metrics["train_accuracy"],
                                               metrics["train_loss"], metrics.get("val_loss")), refresh=False)
        self.bar.update(1)

    @staticmethod
    def _numbers(val_accuracy, accuracy, loss, val_loss):
        parts = [] if val_accuracy is None else [f"val acc {val_accuracy:.1%}"]
        parts += [f"acc {accuracy:.1%}", f"loss {loss:.4f}"]
        parts += [] if val_loss is None else [f"val loss {val_loss:.4f}"]
        return ", ".join(parts)  # tqdm puts ", " before it

    def info(self, text):
        bar = getattr(self, "bar", None)
        if bar is not None and not bar.disable and not getattr(bar, "_closed", False):
            bar.write(terminal_safe(text), file=self.stream)  # keeps the bar intact below the line
        else:
            super().info(text)

    def close(self):
        bar = getattr(self, "bar", None)
        if bar is not None:
            bar.close()
            bar._closed = True


class QuietReporter(Reporter):
    """Says nothing but the output folder at the end (for scripts that capture it)."""

    def info(self, text):
        pass

    def finished(self, out_dir, files, summary):
        print(out_dir, file=self.stream, flush=True)


class JsonLinesReporter(Reporter):
    """One JSON object per line on stdout: ``start``, ``epoch`` per epoch, ``done``."""

    def info(self, text):
        pass

    def event(self, name, **fields):
        print(json.dumps({"event": name, **_plain(fields)}), file=self.stream, flush=True)

    def epoch(self, metrics):
        self.event("epoch", **metrics)

    def warn(self, text):
        self.event("warning", message=text)

    def finished(self, out_dir, files, summary):
        pass  # the run sends a `done` event with the files itself


def _plain(value):
    """NumPy scalars and paths to what json understands; NaN to null."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def make_reporter(quiet=False, jsonl=False, stream=None):
    """The reporter for the ``--quiet`` / ``--jsonl`` flags (a bar otherwise).

    >>> type(make_reporter(jsonl=True)).__name__
    'JsonLinesReporter'
    """
    if jsonl:
        return JsonLinesReporter(stream)
    if quiet:
        return QuietReporter(stream)
    return BarReporter(stream)
