"""ViT-Small for small images.

References: Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021
(pre-norm transformer encoder, class token, learned position embeddings);
the "Small" size (width 384, depth 12, 6 heads, MLP 1536) is DeiT-S from
Touvron et al., ICML 2021. For 32x32 inputs the patch size is 4 (64 tokens), a
common choice for CIFAR-10; in general it is about 1/8 of the shorter side.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ntga.victims._models import _common


def default_patch_size(height: int, width: int) -> int:
  """About an eighth of the shorter side: 4 for 28-32 px, 1 for 8 px."""
  return max(1, round(min(height, width) / 8))


class EncoderBlock(nnx.Module):
  """x + MHA(LN(x)); x + MLP(LN(x)) with GELU."""

  def __init__(self, dim: int, heads: int, mlp_dim: int, *, rngs: nnx.Rngs):
    self.ln1 = nnx.LayerNorm(dim, rngs=rngs)
    self.attn = nnx.MultiHeadAttention(heads, dim, decode=False, rngs=rngs)
    self.ln2 = nnx.LayerNorm(dim, rngs=rngs)
    self.fc1 = nnx.Linear(dim, mlp_dim, rngs=rngs)
    self.fc2 = nnx.Linear(mlp_dim, dim, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x + self.attn(self.ln1(x))
    return x + self.fc2(jax.nn.gelu(self.fc1(self.ln2(x))))


class ViT(nnx.Module):
  """A Vision Transformer classifier reading the class token."""

  def __init__(self, input_shape: tuple[int, int, int], num_classes: int, *,
               dim: int = 384, depth: int = 12, heads: int = 6,
               mlp_dim: int = 1536, patch: int | None = None, rngs: nnx.Rngs):
    h, w, c = input_shape
    p = patch or default_patch_size(h, w)
    self.patch = p
    self.embed = nnx.Conv(c, dim, (p, p), strides=(p, p), padding="SAME",
                          rngs=rngs)
    tokens = _common.same_size(h, p) * _common.same_size(w, p) + 1
    self.cls = nnx.Param(jnp.zeros((1, 1, dim)))
    self.pos = nnx.Param(0.02 * jax.random.normal(rngs.params(), (1, tokens, dim)))
    self.blocks = nnx.List(
        [EncoderBlock(dim, heads, mlp_dim, rngs=rngs) for _ in range(depth)])
    self.ln = nnx.LayerNorm(dim, rngs=rngs)
    self.head = nnx.Linear(dim, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.embed(x)
    n, dim = x.shape[0], x.shape[-1]
    x = x.reshape((n, -1, dim))
    cls = jnp.broadcast_to(self.cls[...], (n, 1, dim))
    x = jnp.concatenate([cls, x], axis=1) + self.pos[...]
    for block in self.blocks:
      x = block(x)
    return self.head(self.ln(x[:, 0]))
