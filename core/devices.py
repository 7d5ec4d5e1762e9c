"""Pick where models run: CUDA when present (bf16 for generation), else CPU (fp32)."""

from __future__ import annotations


def resolve_device(setting: str = "auto") -> str:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``; explicit values are checked."""
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        from core.errors import ConfigError

        raise ConfigError("ASKDESK_DEVICE=cuda but torch sees no GPU; use auto or cpu, or install a CUDA build of torch.")
    return setting


#: Intra-op threads for the threads that decode; ``None`` until a serving process reserves them.
_DECODER_THREADS: int | None = None


def reserve_cores_for_decoding() -> None:
    """Serving processes call this before loading models: one torch thread per thread, except decoders.

    Every thread that runs parallel torch operations gets its own OpenMP team. With two
    teams on two cores (say, the thread that loaded the model and the batch scheduler's),
    libgomp stops spinning between parallel regions and every region pays a futex wake-up —
    hundreds per token, which makes decoding and prompt reading markedly slower on a small
    machine (docs/serving.md, docs/performance.md).
    So in a serving process every thread uses one core (loading, query embedding: short
    work), and the threads that decode — the batch scheduler, or ``generate`` when batching
    is off — take all of them (:func:`use_decoder_threads`). Batch jobs such as
    ``askdesk index build`` run in their own process and keep torch's default.
    """
    global _DECODER_THREADS
    import torch

    if _DECODER_THREADS is None:
        _DECODER_THREADS = torch.get_num_threads()
    torch.set_num_threads(1)


def use_decoder_threads() -> None:
    """Called at the start of a decoding thread: all reserved cores for this thread only."""
    if _DECODER_THREADS is None:
        return
    import threading

    import torch

    torch.set_num_threads(_DECODER_THREADS)
    torch.get_num_threads()  # settles this thread's own count now (torch initialises it lazily)
    # That also made all cores the default for threads started later (asyncio's executor
    # grows on demand). Setting one core again from a throwaway thread restores the default
    # and leaves this thread's own setting alone (OpenMP's thread count is per thread).
    reset = threading.Thread(target=torch.set_num_threads, args=(1,), name="askdesk-one-core")
    reset.start()
    reset.join()
