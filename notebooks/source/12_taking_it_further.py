"""Notebook 12: the digits CNN carried to PyTorch and to ONNX Runtime."""
# requires: torch, onnx, onnxruntime

# %% [markdown]
# # 12. Taking it further
#
# Everything in this course runs on one engine you can read, node by node. Real models outgrow it:
# they want a GPU, then many GPUs on many machines, then a phone or a web page to run on. None of
# that changes the ideas (a graph, local gradients, backpropagation, an optimizer's step); it
# changes the machinery. So the last notebook carries a model over to the machinery of the field:
#
# 1. train the digits CNN here, with this engine;
# 2. export it to **PyTorch** in one call, and check that PyTorch computes the same outputs and the
#    same gradients;
# 3. train on in PyTorch (on a GPU when there is one);
# 4. save it to **ONNX** and run it in **ONNX Runtime**, the engine behind ONNX models on servers,
#    phones and in browsers.
#
# It needs the optional packages: `pip install -e ".[export]"`.

# %%
import tempfile
from pathlib import Path

import numpy as np
import torch
import onnxruntime
import nn
import optim
import autograd_core as ag
from autograd_core import Value, export
from torch.nn import functional as TF

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. The digits CNN, trained here
#
# The network of `autograd-core train --data digits`: two 3×3 convolutions with ReLU and 2×2 max
# pooling, then one linear layer to the ten digits. The 8×8 images are standardised with the
# training part's mean and standard deviation.

# %%
digits = nn.data.load_digits()
order = np.random.default_rng(0).permutation(len(digits.y))
train, val = order[:1400], order[1400:]
mean, std = digits.images[train].mean(), digits.images[train].std()
X_train, y_train = (digits.images[train] - mean) / std, digits.y[train]
X_val, y_val = (digits.images[val] - mean) / std, digits.y[val]

nn.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(16 * 2 * 2, 10),
)
loss_fn = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=0.01)
step = ag.compile(lambda x, y: loss_fn(model(x), y))   # the training step, traced once, replayed

def accuracy_here(X, y):
    model.eval()
    with ag.no_grad():
        predicted = model(Value(X, requires_grad=False)).data.argmax(axis=1)
    model.train()
    return (predicted == y).mean()

rng = np.random.default_rng(1)
for epoch in range(3):
    for batch in np.array_split(rng.permutation(len(y_train)), len(y_train) // 32):
        optimizer.zero_grad()
        step(X_train[batch], y_train[batch]).backward()
        optimizer.step()
    print(f"epoch {epoch + 1}: validation accuracy {accuracy_here(X_val, y_val):.1%}")
assert accuracy_here(X_val, y_val) > 0.9

# %% [markdown]
# ## 2. The same network in PyTorch
#
# `export.to_torch` calls the model once on an example input, watching it: each layer that has a
# counterpart in `torch.nn` becomes that layer, built with the same arguments, and our weights are
# copied into it (PyTorch keeps weights in the same layout as `nn`: a convolution's kernel is
# (out channels, in channels, kH, kW) in both). `export.torch_source` shows the class as Python:

# %%
print(export.torch_source(model, X_val[:1]))
tm = export.to_torch(model, X_val[:1])

# %% [markdown]
# "The same network" is a claim we can check to the last digits. Run both on the validation
# images, take the same loss, and backpropagate in both: the outputs and every parameter's
# gradient agree to about 1e-16, the rounding of float64. (Not bit for bit: PyTorch's
# convolution adds its products in another order.)

# %%
model.eval(); tm.eval()
X, y = Value(X_val), y_val
for p in model.parameters():
    p.grad = None
loss_here = loss_fn(model(X), y)
loss_here.backward()

x_torch = torch.from_numpy(X_val)
loss_there = TF.cross_entropy(tm(x_torch), torch.from_numpy(y_val))
loss_there.backward()

print(f"loss here {float(loss_here.data):.15f}\nloss there {loss_there.item():.15f}")
theirs = dict(tm.named_parameters())
for name, p in model.named_parameters():
    difference = np.abs(theirs[name].grad.numpy() - p.grad).max()
    print(f"{name:9s} gradient: largest difference {difference:.1e}")
    assert difference < 1e-10
assert abs(float(loss_here.data) - loss_there.item()) < 1e-12

# %% [markdown]
# ## 3. Training on in PyTorch
#
# From here it is an ordinary PyTorch module: move it to a GPU if there is one, and train it with
# PyTorch's optimizer on the same batches. (For many GPUs, PyTorch's `DistributedDataParallel`
# wraps this very module; `docs/export.md` shows how, and a test trains this CNN that way on two
# processes.)

# %%
device = "cuda" if torch.cuda.is_available() else "cpu"
tm = tm.to(device).train()
torch_optimizer = torch.optim.Adam(tm.parameters(), lr=0.003)
Xt, yt = torch.from_numpy(X_train).to(device), torch.from_numpy(y_train).to(device)
torch.manual_seed(0)
for epoch in range(3):
    for batch in torch.randperm(len(yt)).split(32):
        torch_optimizer.zero_grad()
        TF.cross_entropy(tm(Xt[batch]), yt[batch]).backward()
        torch_optimizer.step()
tm.eval()
with torch.no_grad():
    accuracy_there = (tm(torch.from_numpy(X_val).to(device)).argmax(dim=1).cpu().numpy() == y_val).mean()
print(f"on {device}, after 3 more epochs: validation accuracy {accuracy_there:.1%}")
assert accuracy_there > 0.9

# %% [markdown]
# Weights move back the same way they came: a PyTorch `state_dict` has our names, so our model
# takes the weights trained in PyTorch, and then predicts what PyTorch predicts.

# %%
model.load_state_dict(tm.cpu().state_dict())
with torch.no_grad():
    predicted_there = tm(torch.from_numpy(X_val)).argmax(dim=1).numpy()
assert (model(Value(X_val)).data.argmax(axis=1) == predicted_there).all()
print(f"back here: validation accuracy {accuracy_here(X_val, y_val):.1%}")

# %% [markdown]
# ## 4. ONNX, and ONNX Runtime
#
# ONNX is a file format for a trained network: a graph of standard operators (`Conv`, `Relu`,
# `MaxPool`, `Gemm`...) with the weights inside. Each operation of the engine declares its ONNX
# form beside its NumPy code, so the export writes the traced graph operator by operator. The file
# is float32, the type ONNX Runtime runs everywhere, and takes one image at a time, as a web page
# would send it.

# %%
model.float().eval()
path = Path(tempfile.mkdtemp()) / "digits.onnx"
proto = export.to_onnx(model, X_val[:1].astype(np.float32), path)
print([node.op_type for node in proto.graph.node])

session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
logits = np.concatenate([session.run(None, {"x": image[None].astype(np.float32)})[0] for image in X_val])
ours = model(Value(X_val.astype(np.float32))).data
print(f"ONNX Runtime against the engine (float32): largest difference {np.abs(logits - ours).max():.1e}")
assert np.abs(logits - ours).max() < 1e-4
assert (logits.argmax(axis=1) == predicted_there).mean() > 0.99
print(f"ONNX Runtime: validation accuracy {(logits.argmax(axis=1) == y_val).mean():.1%}")

# %% [markdown]
# In a browser, `onnxruntime-web` loads the same `digits.onnx`; the page standardises an 8×8
# drawing with the training mean and standard deviation, and runs it:
#
# ```js
# const session = await ort.InferenceSession.create("digits.onnx");
# const { output } = await session.run({ x: new ort.Tensor("float32", pixels, [1, 1, 8, 8]) });
# ```
#
# What stays exact on the way, and what does not (dropout's random numbers are PyTorch's own once
# the model trains there; ONNX is float32 and for inference): `docs/export.md`.
