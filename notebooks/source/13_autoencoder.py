# %% [markdown]
# # 13. An autoencoder: making images larger again
#
# Every network so far has made its input smaller: a convolution and a pooling layer turn an 8×8
# digit into a few numbers, and a linear layer turns those into ten scores. An **autoencoder** asks
# for the way back as well. Its *encoder* squeezes the image into a short **code**; its *decoder*
# has to rebuild the whole image from that code alone; and the loss is simply how far the rebuilt
# image is from the original. No labels are needed: the image is its own target. Whatever the code
# keeps is what the network found most worth keeping.
#
# The encoder is made of layers we know. The decoder needs layers that make an image *larger*, and
# this notebook looks at two of them before training anything:
#
# * **upsampling** (`nn.Upsample`): repeat each pixel (nearest) or blend neighbours (bilinear),
#   with no weights at all, usually followed by an ordinary convolution;
# * the **transposed convolution** (`nn.ConvTranspose2d`): a layer with weights that paints a copy
#   of its kernel, scaled by each input pixel, onto a larger output.

# %%
import matplotlib.pyplot as plt
import numpy as np
import nn
import optim
import autograd_core as ag
from autograd_core import Value, no_grad

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## Three ways to double a 2×2 image
#
# Nearest-neighbour upsampling copies each pixel into a 2×2 block. Bilinear upsampling places the
# four input pixels at the centres of those blocks and fills in everything between them by straight
# lines in each direction (at the borders it repeats the edge).

# %%
tiny = np.array([[[[1.0, 2.0],
                   [3.0, 4.0]]]])
nearest = ag.interpolate(tiny, scale_factor=2, mode="nearest")
bilinear = ag.interpolate(tiny, scale_factor=2, mode="bilinear")
print("nearest:\n", nearest.data[0, 0])
print("bilinear:\n", bilinear.data[0, 0])
assert nearest.data[0, 0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
assert bilinear.data[0, 0, 0].tolist() == [1.0, 1.25, 1.75, 2.0]   # 1/4 and 3/4 of the way from 1 to 2

# %% [markdown]
# A transposed convolution with stride 2 takes each input pixel in turn, multiplies the whole
# kernel by it, and adds the product into the output at twice the pixel's position. With a 2×2
# kernel and stride 2 the stamped copies sit side by side without overlapping, so each pixel becomes
# its own 2×2 patch: the kernel's pattern, scaled.

# %%
kernel = np.array([[[[1.0, 0.5],
                     [0.5, 0.0]]]])          # (in channels, out channels, kH, kW)
stamped = ag.conv_transpose2d(tiny, kernel, stride=2)
print("transposed convolution:\n", stamped.data[0, 0])
assert stamped.data[0, 0].tolist() == [[1.0, 0.5, 2.0, 1.0],
                                       [0.5, 0.0, 1.0, 0.0],
                                       [3.0, 1.5, 4.0, 2.0],
                                       [1.5, 0.0, 2.0, 0.0]]

# %% [markdown]
# Nearest upsampling is the special case of a kernel full of ones. The difference that matters is
# that the kernel of a transposed convolution is *learned*: the decoder chooses what each code
# number paints.
#
# ### Why "transposed"?
#
# A convolution maps a large image to a smaller one; every output pixel reads a window of the
# input. Its gradient with respect to its input goes the other way: each output pixel's gradient is
# sent back over the window it read. That backward map, used as a forward layer, *is* the transposed
# convolution (the name comes from writing the convolution as a matrix: the backward map is its
# transpose). So the engine can check it against its own backward pass of `conv2d`:

# %%
rng = np.random.default_rng(0)
weight = rng.normal(size=(3, 2, 3, 3))               # conv2d: 2 channels in, 3 out
image = Value(rng.normal(size=(1, 2, 7, 7)))
small = ag.conv2d(image, weight, stride=2, padding=1)
print("conv2d:", image.shape, "->", small.shape)
upstream = rng.normal(size=small.shape)              # some gradient arriving at the small image
(through_conv,) = ag.grad((small * upstream).sum(), image)
forwards = ag.conv_transpose2d(upstream, weight, stride=2, padding=1)
print("conv_transpose2d:", upstream.shape, "->", forwards.shape)
assert np.allclose(through_conv, forwards.data)     # the same numbers: backward of one, forward of the other

# %% [markdown]
# The same weight array serves both: `conv2d` reads it as (out, in, kH, kW) and `conv_transpose2d`
# as (in, out, kH, kW), which is why `nn.ConvTranspose2d(in_channels, out_channels, ...)` stores its
# weight with `in_channels` first.
#
# ### Output sizes, and one more argument
#
# A transposed convolution undoes a convolution's *shape*. A convolution with stride 2 sends both 7
# and 8 rows to 4 (the last window simply does not fit in one of them), so going back is ambiguous,
# and the argument `output_padding` picks which size to produce:
#
# out = (in − 1) · stride − 2 · padding + (kernel − 1) + output_padding + 1

# %%
code = np.zeros((1, 1, 4, 4))
w3 = np.ones((1, 1, 3, 3))
for extra in (0, 1):
    out = ag.conv_transpose2d(code, w3, stride=2, padding=1, output_padding=extra)
    print(f"4 rows, kernel 3, stride 2, padding 1, output_padding {extra}: {out.shape[2]} rows")
    assert out.shape[2] == (4 - 1) * 2 - 2 * 1 + (3 - 1) + extra + 1

# %% [markdown]
# ### Uneven overlap
#
# With a 3×3 kernel and stride 2 the stamped copies overlap, but not evenly: some output pixels are
# covered by one copy, some by two, some by four. Stamping a kernel of ones onto an image of ones
# counts them, and shows the checkerboard that such a layer has to learn to smooth away (Odena,
# Dumoulin and Olah, "Deconvolution and Checkerboard Artifacts", 2016, look at this in depth):

# %%
coverage = ag.conv_transpose2d(np.ones((1, 1, 4, 4)), w3, stride=2, padding=1, output_padding=1).data[0, 0]
print(coverage)
assert coverage[1:3, 1:3].tolist() == [[4.0, 2.0], [2.0, 1.0]]

# %% [markdown]
# ## The digits, and the autoencoder
#
# The 1,797 digits of 8×8 pixels that `nn.data` ships, scaled to [0, 1]. 297 of them are kept
# aside to see how well the autoencoder rebuilds digits it never trained on.

# %%
digits = nn.data.load_digits()
images = (digits.images / 16.0).astype(np.float32)
order = np.random.default_rng(0).permutation(len(images))
held_out, train = order[:297], order[297:]
print(len(train), "training images,", len(held_out), "held out")

# %% [markdown]
# The encoder is the LeNet pattern of notebook 11 without its classifier: two rounds of a 3×3
# convolution, ReLU and 2×2 max pooling take each image from 1×8×8 = 64 numbers to 8×2×2 = 32. The
# decoder mirrors it with two transposed convolutions of stride 2 (kernel 3, padding 1 and
# output_padding 1, so 2 → 4 → 8), and a sigmoid at the end keeps the pixels between 0 and 1.

# %%
def autoencoder(make_decoder):
    nn.manual_seed(0)
    encoder = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),     # 1x8x8 -> 16x4x4
        nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),     # -> 8x2x2: the code
    )
    return nn.Sequential(encoder, make_decoder()).float()

model = autoencoder(lambda: nn.Sequential(
    nn.ConvTranspose2d(8, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),   # -> 16x4x4
    nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid(),  # -> 1x8x8
))
print(model)
print(sum(p.data.size for p in model.parameters()), "parameters")
print("code:", model[0](images[:1]).shape, "  rebuilt:", model(images[:1]).shape)

# %% [markdown]
# Training is the familiar loop. The only new thing is the target: the batch itself. The loss is
# the mean squared difference per pixel, and Adam does the steps.

# %%
loss_fn = nn.MSELoss()

def train_autoencoder(model, epochs=30, lr=3e-3):
    optimizer = optim.Adam(model.parameters(), lr=lr)
    curve = []
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for batch in nn.data.DataLoader(images[train], batch_size=32, shuffle=True, seed=epoch):
            optimizer.zero_grad()
            loss = loss_fn(model(batch), batch)          # the image is its own target
            loss.backward()
            optimizer.step()
            total += float(loss.data) * len(batch)
        curve.append(total / len(train))
    return curve

def held_out_error(model):
    model.eval()
    with no_grad():
        return float(loss_fn(model(images[held_out]), images[held_out]).data)

curve = train_autoencoder(model)
error = held_out_error(model)
# a yardstick: "rebuild" every digit as the average training image
average_image = images[train].mean(axis=0)
baseline = float(((images[held_out] - average_image) ** 2).mean())
print(f"mean squared error per pixel on held-out digits: {error:.4f} (the average image: {baseline:.4f})")
assert error < 0.3 * baseline

plt.figure(figsize=(5, 3))
plt.plot(range(1, len(curve) + 1), curve, label="training loss")
plt.axhline(baseline, color="grey", ls="--", lw=1, label="the average image")
plt.axhline(error, color="C1", ls=":", label="held out, after training")
plt.xlabel("epoch"); plt.ylabel("mean squared error per pixel"); plt.legend(); plt.tight_layout()
plt.show()

# %% [markdown]
# ## Originals and their reconstructions
#
# One held-out image of each digit: the top row is what went in, the bottom row what came back out
# of 32 numbers.

# %%
picked = [held_out[np.flatnonzero(digits.y[held_out] == d)[0]] for d in range(10)]
model.eval()
with no_grad():
    rebuilt = model(images[picked]).data
fig, axes = plt.subplots(2, 10, figsize=(9, 2.2))
for k, index in enumerate(picked):
    axes[0, k].imshow(images[index, 0], cmap="gray_r", vmin=0, vmax=1)
    axes[1, k].imshow(rebuilt[k, 0], cmap="gray_r", vmin=0, vmax=1)
    axes[0, k].set_title(str(digits.y[index]), fontsize=9)
for ax in axes.ravel():
    ax.axis("off")
axes[0, 0].text(-2, 3.5, "in", ha="right", fontsize=9)
axes[1, 0].text(-2, 3.5, "out", ha="right", fontsize=9)
plt.show()
per_digit = ((rebuilt - images[picked]) ** 2).mean(axis=(1, 2, 3))
print("error per digit:", np.round(per_digit, 3))

# %% [markdown]
# The strokes come back in the right places; what is lost is mostly fine detail and the exact ink
# level of faint pixels. Half the numbers were thrown away in the middle, so the encoder had to find
# a description of a digit that is shorter than its pixels, and the decoder learned to turn that
# description back into strokes.
#
# ## The other decoder: upsample, then convolve
#
# The same encoder, with a decoder that first makes the image larger without weights (nearest
# neighbour) and then lets an ordinary 3×3 convolution decide what to draw there. Every output
# pixel now sees the same number of inputs, so the uneven overlap above cannot arise.

# %%
upsampling = autoencoder(lambda: nn.Sequential(
    nn.Upsample(scale_factor=2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),    # -> 16x4x4
    nn.Upsample(scale_factor=2), nn.Conv2d(16, 1, 3, padding=1), nn.Sigmoid(), # -> 1x8x8
))
train_autoencoder(upsampling, epochs=20)     # (its 3x3 convolutions at 8x8 cost more: fewer epochs)
upsampling_error = held_out_error(upsampling)
print(f"held-out error: transposed convolutions {error:.4f}, upsampling and convolution {upsampling_error:.4f}")
assert upsampling_error < 0.5 * baseline

# %% [markdown]
# Both decoders learn to rebuild the digits far better than the average image does. On 8×8 images,
# trained for a few seconds each (and the second for fewer epochs), the difference between them says
# more about this small experiment (the learning rate, the epochs, the seed) than about the layers; on
# large images, the
# checkerboard patterns of transposed convolutions are a real nuisance, and "upsample, then
# convolve" is the usual cure.
#
# Two things to try: make the code smaller (4 channels instead of 8, so 16 numbers) and see which
# digits suffer first; or give the decoder `nn.MaxUnpool2d`, which puts each value back exactly
# where the encoder's max pooling found it (`nn.MaxPool2d(2, return_indices=True)` hands over the
# places).
