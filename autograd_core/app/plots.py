"""The run's pictures, drawn with matplotlib's object API and the Agg canvas.

Using ``Figure`` directly (not ``pyplot``) means no window, no global state
and no change to the backend of a notebook that imports this module.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .files import write_file

_TRAIN, _VAL = "#1f77b4", "#d62728"
MAX_LEGEND_CLASSES = 12  # more classes than this: the legend lists the first ones and "... and K more"
MAX_LABEL_LENGTH = 80


def plain_text(text, limit=MAX_LABEL_LENGTH):
    r"""`text` as matplotlib will show it literally, for every title, axis label
    and legend entry that holds a user's string (a file, class or column name).

    A pair of ``$`` would start mathtext (and a malformed formula raises while
    the figure is saved), so each ``$`` is escaped; control characters become
    spaces; a long name is cut to `limit` characters, so it cannot widen the
    picture without bound.

    >>> print(plain_text("price in $ (2024) and $x^$"))
    price in \$ (2024) and \$x^\$
    >>> plain_text("a" * 100, limit=10)
    'aaaaaaa...'
    """
    text = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in str(text))
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return text.replace("$", r"\$")


def _save(figure, path):
    FigureCanvasAgg(figure)
    return write_file(path, lambda file: figure.savefig(file, format="png", dpi=110, bbox_inches="tight"))


def plot_curves(history, path, best_epoch=None, title=""):
    """Loss and accuracy per epoch, training and validation, side by side.

    ``history`` is the list of per-epoch metric dicts the training loop keeps
    (``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``).

    >>> history = [{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.4},
    ...            {"epoch": 2, "train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.7}]
    >>> plot_curves(history, "curves.png", best_epoch=2)          # doctest: +SKIP
    """
    figure = Figure(figsize=(9, 3.6))
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    epochs = [row["epoch"] for row in history]
    has_val = any(row.get("val_loss") is not None for row in history)
    for axes, key, label in ((loss_axes, "loss", "cross-entropy loss"), (accuracy_axes, "accuracy", "accuracy")):
        axes.plot(epochs, [row[f"train_{key}"] for row in history], color=_TRAIN, label="training")
        if has_val:
            axes.plot(epochs, [_nan(row.get(f"val_{key}")) for row in history], color=_VAL, label="validation")
        if best_epoch is not None:
            axes.axvline(best_epoch, color="0.5", linestyle="--", linewidth=1, label=f"best (epoch {best_epoch})")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
    loss_axes.set_yscale("log")
    accuracy_axes.set_ylim(0, 1.02)
    accuracy_axes.legend(loc="lower right")
    if title:
        figure.suptitle(plain_text(title))
    return _save(figure, path)


def _nan(value):
    return np.nan if value is None else value


def plot_decision_regions(predict, X_train, y_train, X_val, y_val, class_names, feature_names, path, title=""):
    """Colour the plane by the predicted class and scatter the examples on it.

    ``predict`` maps raw feature rows (n, 2) to class indices; the examples are
    in the same raw units, so the axes read in the data's own units.

    >>> plot_decision_regions(lambda X: (X[:, 0] > 0).astype(int), X, y, X[:0], y[:0],
    ...                       ["left", "right"], ["x1", "x2"], "regions.png")     # doctest: +SKIP
    """
    points = np.concatenate([X_train, X_val]) if len(X_val) else X_train
    low, high = points.min(axis=0), points.max(axis=0)
    margin = 0.1 * np.where(high > low, high - low, 1.0)
    grid_x, grid_y = np.meshgrid(
        np.linspace(low[0] - margin[0], high[0] + margin[0], 200),
        np.linspace(low[1] - margin[1], high[1] + margin[1], 200),
    )
    regions = predict(np.column_stack([grid_x.ravel(), grid_y.ravel()])).reshape(grid_x.shape)

    figure = Figure(figsize=(5.2, 4.6))
    axes = figure.subplots()
    count = len(class_names)
    colours = [f"C{k % 10}" for k in range(count)]
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(colours)
    axes.contourf(grid_x, grid_y, regions, levels=np.arange(count + 1) - 0.5, cmap=cmap, alpha=0.25)
    for k, name in enumerate(class_names):
        shown = plain_text(name, limit=40) if k < MAX_LEGEND_CLASSES else None  # None: not in the legend
        mask = y_train == k
        axes.scatter(X_train[mask, 0], X_train[mask, 1], s=14, color=colours[k], edgecolors="white", linewidths=0.4,
                     label=shown)
        if len(X_val):
            mask = y_val == k
            axes.scatter(X_val[mask, 0], X_val[mask, 1], s=26, color=colours[k], marker="^", edgecolors="black", linewidths=0.6)
    if count > MAX_LEGEND_CLASSES:
        axes.plot([], [], linestyle="none", label=f"... and {count - MAX_LEGEND_CLASSES} more classes")
    if len(X_val):
        axes.scatter([], [], s=26, marker="^", facecolors="none", edgecolors="black", label="validation")
    axes.set_xlabel(plain_text(feature_names[0]))
    axes.set_ylabel(plain_text(feature_names[1]))
    axes.legend(loc="best", fontsize="small", framealpha=0.8)
    if title:
        axes.set_title(plain_text(title))
    return _save(figure, path)


MAX_MATRIX_LABELS = 30  # more classes than this: the confusion matrix has no per-class ticks or counts


def confusion_counts(y_true, y_pred, num_classes):
    """``counts[i, j]``: how many examples of class ``i`` were predicted as ``j``.

    >>> confusion_counts(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3).tolist()
    [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    """
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return counts


def plot_confusion_matrix(y_true, y_pred, class_names, path, title=""):
    """The confusion matrix as a picture: one row per true class, one column per
    predicted class, each cell the count (the diagonal is what was right).

    >>> plot_confusion_matrix([0, 1, 1], [0, 1, 0], ["cat", "dog"], "confusion.png")   # doctest: +SKIP
    """
    count = len(class_names)
    counts = confusion_counts(y_true, y_pred, count)
    side = min(3.0 + 0.45 * count, 12.0)
    figure = Figure(figsize=(side + 1.2, side))
    axes = figure.subplots()
    shown = axes.imshow(counts, cmap="Blues", interpolation="nearest")
    figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04, label="examples")
    if count <= MAX_MATRIX_LABELS:
        names = [plain_text(name, limit=20) for name in class_names]
        axes.set_xticks(range(count), names, rotation=90 if max(map(len, names)) > 3 else 0)
        axes.set_yticks(range(count), names)
        dark = counts.max() / 2 if counts.max() else 1
        for i in range(count):
            for j in range(count):
                if counts[i, j]:
                    axes.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize="small",
                              color="white" if counts[i, j] > dark else "black")
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    correct = int(np.trace(counts))
    total = int(counts.sum())
    caption = f"{correct} of {total} right ({correct / total:.1%})" if total else "no examples"
    axes.set_title(plain_text(f"{title}: {caption}" if title else caption))
    return _save(figure, path)


def _unit_range(picture):
    """An image (C, H, W) scaled to [0, 1] by its own minimum and maximum: (H, W), or (H, W, 3) for colour."""
    low, high = picture.min(), picture.max()
    scaled = (picture - low) / (high - low if high > low else 1.0)
    return np.moveaxis(scaled, 0, -1) if picture.shape[0] == 3 else scaled[0]


def _mosaic(pictures, columns):
    """The pictures in rows of `columns`, with a gap between them and a band above
    each for its caption (0 in grey, which gray_r draws white; white in colour):
    (mosaic, (cell height, cell width, band height, picture width))."""
    height, width = pictures[0].shape[:2]
    band, gap = max(2, round(0.5 * height)), max(1, round(0.15 * width))
    cell_h, cell_w = band + height, width + gap
    rows = -(-len(pictures) // columns)
    shape = (rows * cell_h, min(len(pictures), columns) * cell_w - gap) + pictures[0].shape[2:]
    mosaic = np.ones(shape) if pictures[0].ndim == 3 else np.zeros(shape)
    for i, picture in enumerate(pictures):
        row, column = divmod(i, columns)
        top, left = row * cell_h + band, column * cell_w
        mosaic[top:top + height, left:left + width] = picture
    return mosaic, (cell_h, cell_w, band, width)


def plot_misclassified(images, y_true, y_pred, class_names, path, title="", limit=40, columns=8):
    """A grid of the images the model got wrong (at most `limit`, in their
    order), each captioned with its true and predicted class.

    ``images`` is ``(n, C, H, W)`` in the data's own units (one channel is
    drawn in grey, ink dark; three as colour); ``y_true`` and ``y_pred`` are
    class indices. With nothing wrong the picture says so.

    >>> plot_misclassified(raw_images, y_val, predictions, ["0", "1", ...], "misclassified.png")   # doctest: +SKIP
    """
    images, y_true, y_pred = np.asarray(images), np.asarray(y_true), np.asarray(y_pred)
    wrong = np.flatnonzero(y_true != y_pred)
    shown = wrong[:limit]
    rows = max(1, -(-len(shown) // columns))
    figure = Figure(figsize=(1.3 * columns, 1.5 * rows + 0.6))
    axes = figure.subplots()
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.6 / (1.5 * rows + 0.6))  # 0.6 in: the title
    axes.set_axis_off()
    axes.set_anchor("N")  # (the grid under the title; the saved picture is cut to what is drawn)
    if len(wrong) == 0:
        axes.text(0, 0.5, f"no misclassified images among {len(y_true)}", transform=axes.transAxes, va="center")
    else:
        # one picture of all the images, each scaled to its own range as imshow scales one image, with a
        # band above each for its caption: one Axes draws much faster than one per image
        mosaic, (cell_h, cell_w, band, width) = _mosaic([_unit_range(images[k]) for k in shown], columns)
        axes.imshow(mosaic, cmap="gray_r" if mosaic.ndim == 2 else None, vmin=0.0, vmax=1.0,
                    interpolation="nearest")
        for i, k in enumerate(shown):
            row, column = divmod(i, columns)
            axes.text(column * cell_w + (width - 1) / 2, row * cell_h + band - 0.7,
                      f"true {plain_text(class_names[y_true[k]], limit=12)}\n"
                      f"predicted {plain_text(class_names[y_pred[k]], limit=12)}",
                      ha="center", va="bottom", fontsize="small")
    heading = f"{len(wrong)} of {len(y_true)} misclassified" + (f", the first {len(shown)}" if len(wrong) > len(shown) else "")
    figure.suptitle(plain_text(f"{title}: {heading}" if title else heading))
    return _save(figure, path)
