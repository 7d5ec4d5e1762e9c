"""Serving processes give every core to the decoding thread and one to every other thread."""

from __future__ import annotations

import threading

import torch

import core.devices as devices


def test_only_decoding_threads_use_every_core():
    before, saved = torch.get_num_threads(), devices._DECODER_THREADS  # noqa: SLF001
    try:
        devices._DECODER_THREADS = None  # noqa: SLF001
        devices.reserve_cores_for_decoding()
        assert torch.get_num_threads() == 1
        seen: dict[str, int] = {}

        def decoder() -> None:
            devices.use_decoder_threads()
            seen["decoder"] = torch.get_num_threads()

        def helper() -> None:  # e.g. a worker thread embedding a query
            seen["helper"] = torch.get_num_threads()

        for target in (decoder, helper):
            thread = threading.Thread(target=target)
            thread.start()
            thread.join()
        assert seen == {"decoder": before, "helper": 1}
        assert torch.get_num_threads() == 1  # the caller keeps its single core
    finally:
        devices._DECODER_THREADS = saved  # noqa: SLF001
        torch.set_num_threads(before)


def test_without_a_reservation_decoding_threads_keep_torchs_default():
    saved = devices._DECODER_THREADS  # noqa: SLF001
    try:
        devices._DECODER_THREADS = None  # noqa: SLF001
        seen: list[int] = []
        thread = threading.Thread(target=lambda: (devices.use_decoder_threads(), seen.append(torch.get_num_threads())))
        thread.start()
        thread.join()
        assert seen == [torch.get_num_threads()]
    finally:
        devices._DECODER_THREADS = saved  # noqa: SLF001
