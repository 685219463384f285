"""Compatibility shims between the pinned versions of our dependencies.

lhotse 1.33's samplers call ``torch.utils.data.Sampler.__init__()`` without
arguments, as torch >= 2.2 allows; torch 1.13 (the version k2 1.23.4 is built
against) still requires ``data_source``, so every lhotse sampler fails to
construct. torch 1.13's ``Sampler.__init__`` ignores its argument, so making it
optional changes nothing else.
"""
import inspect

import torch.utils.data


def _patch_sampler_init() -> None:
    init = torch.utils.data.Sampler.__init__
    params = inspect.signature(init).parameters
    required = inspect.Parameter.empty
    if "data_source" in params and params["data_source"].default is required:

        def __init__(self, data_source=None) -> None:  # noqa: N807
            pass

        # Deliberate monkeypatch of the method (see the module docstring).
        torch.utils.data.Sampler.__init__ = __init__  # type: ignore[method-assign]


_patch_sampler_init()
