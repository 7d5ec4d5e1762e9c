"""The KV cache the batch scheduler decodes on, fenced off from the rest of the code.

Everything here leans on transformers internals that have changed between releases: the
name of the cache argument of ``forward``, how a ``DynamicCache`` stores its layers, and the
``DynamicLayer`` API that :func:`new_cache`'s growing layer overrides. They live in one module
so that a transformers upgrade breaks one place, and ``tests/core/generation/test_compat.py``
says which assumption broke.
"""

from __future__ import annotations

import inspect


def cache_kwarg(model) -> str:
    """transformers ≥ 5.x calls the cache argument ``cache``; older releases ``past_key_values``."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def layer_tensors(cache) -> list[list]:
    """[[keys, values], ...] views onto a DynamicCache, whatever its internal layout."""
    if hasattr(cache, "layers"):
        return [[layer.keys, layer.values] for layer in cache.layers]
    return [[k, v] for k, v in zip(cache.key_cache, cache.value_cache)]  # transformers < 4.56


def set_layer_tensors(cache, tensors: list[list]) -> None:
    if hasattr(cache, "layers"):
        for layer, (k, v) in zip(cache.layers, tensors):
            layer.keys, layer.values = k, v
    else:
        cache.key_cache[:] = [k for k, _ in tensors]
        cache.value_cache[:] = [v for _, v in tensors]


#: Positions of room a growing cache layer keeps beyond its content (one reallocation per 64 tokens).
CACHE_HEADROOM = 64


def _growing_cache_class():
    """A DynamicCache whose layers append in place into preallocated room (None before transformers 4.56).

    ``DynamicLayer.update`` concatenates, copying all keys and values of the layer at every
    step, a cost that grows with the batch and the answers' length (docs/performance.md). A
    :class:`_GrowingLayer` writes the new positions into spare room and hands attention a
    view. Keys set from outside (the scheduler joining or trimming rows) are adopted on the
    next update with fresh room, so joins stay plain tensor operations.
    """
    try:
        from transformers.cache_utils import Cache, DynamicCache, DynamicLayer
    except ImportError:
        return None

    class _GrowingLayer(DynamicLayer):
        def lazy_initialization(self, key_states, value_states) -> None:
            super().lazy_initialization(key_states, value_states)
            self._room_keys = self._room_values = self._view = None

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            keys, values = self.keys, self.values
            length = keys.shape[-2] if keys.numel() else 0
            new = key_states.shape[-2]
            room = self._room_keys
            if (self._view is not keys or room.shape[-2] < length + new
                    or room.shape[:2] != key_states.shape[:2]):
                # First update, keys replaced from outside, or out of room: copy once into new room.
                shape = (*key_states.shape[:2], length + new + CACHE_HEADROOM, key_states.shape[-1])
                self._room_keys, self._room_values = key_states.new_empty(shape), value_states.new_empty(shape)
                if length:
                    self._room_keys[:, :, :length] = keys
                    self._room_values[:, :, :length] = values
            self._room_keys[:, :, length:length + new] = key_states
            self._room_values[:, :, length:length + new] = value_states
            self.keys = self._view = self._room_keys[:, :, :length + new]
            self.values = self._room_values[:, :, :length + new]
            return self.keys, self.values

    class GrowingCache(DynamicCache):
        def __init__(self) -> None:
            Cache.__init__(self, layer_class_to_replicate=_GrowingLayer)

    try:
        GrowingCache()  # the Cache constructor's arguments changed across 4.5x releases
    except TypeError:
        return None
    return GrowingCache


_GROWING_CACHE = None


def new_cache(layers: list | None = None):
    """A KV cache for the scheduler, growing in place where supported; ``layers`` ([[keys, values],
    ...], copied, never written to) are its starting content."""
    global _GROWING_CACHE
    if _GROWING_CACHE is None:
        _GROWING_CACHE = _growing_cache_class() or False
    if _GROWING_CACHE:
        cache = _GROWING_CACHE()
    else:
        from transformers import DynamicCache

        cache = DynamicCache()
    for index, (k, v) in enumerate(layers or []):
        cache.update(k, v, index)
    return cache


def _left_pad(t, n: int):
    """Left-pad the sequence axis: -2 for keys and values, -1 for masks."""
    import torch

    if n == 0:
        return t
    if t.dim() == 2:
        return torch.nn.functional.pad(t, (n, 0))
    return torch.nn.functional.pad(t, (0, 0, n, 0))


def join_rows(cache, mask, new, new_mask):
    """Append the rows of cache ``new`` to ``cache`` (in place), left-padding the shorter side so
    every row ends at the same column; returns the joined attention mask."""
    import torch

    old_kv, new_kv = layer_tensors(cache), layer_tensors(new)
    old_len, new_len = mask.shape[1], new_mask.shape[1]
    length = max(old_len, new_len)
    merged = [[torch.cat([_left_pad(ok, length - old_len), _left_pad(nk, length - new_len)]),
               torch.cat([_left_pad(ov, length - old_len), _left_pad(nv, length - new_len)])]
              for (ok, ov), (nk, nv) in zip(old_kv, new_kv)]
    set_layer_tensors(cache, merged)
    return torch.cat([_left_pad(mask, length - old_len), _left_pad(new_mask, length - new_len)])


def keep_rows(cache, mask, index):
    """Keep only the rows ``index`` (a long tensor) of ``cache`` (in place), dropping leading columns
    that are padding in every remaining row; returns the kept attention mask."""
    mask = mask.index_select(0, index)
    used = mask.any(dim=0).nonzero()
    start = int(used[0]) if used.numel() else 0
    kept = [[k.index_select(0, index)[:, :, start:], v.index_select(0, index)[:, :, start:]]
            for k, v in layer_tensors(cache)]
    set_layer_tensors(cache, kept)
    return mask[:, start:]
