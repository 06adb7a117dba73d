"""State dicts in the layout of pytorch-CycleGAN-and-pix2pix checkpoints, written from that project's
architecture description (not from our code), to check that such checkpoints load strictly."""

import torch


def _norm(state, key, channels, norm):
    if norm == "batch":
        state[f"{key}.weight"] = torch.rand(channels)
        state[f"{key}.bias"] = torch.rand(channels)
        state[f"{key}.running_mean"] = torch.rand(channels)
        state[f"{key}.running_var"] = torch.rand(channels)
        state[f"{key}.num_batches_tracked"] = torch.tensor(7)


def _conv(state, key, c_in, c_out, k, bias=True, transposed=False):
    state[f"{key}.weight"] = torch.randn((c_in, c_out, k, k) if transposed else (c_out, c_in, k, k))
    if bias:
        state[f"{key}.bias"] = torch.randn(c_out)


def reference_resnet_state(input_nc=3, output_nc=3, ngf=64, n_blocks=9, norm="instance", dropout=False):
    """ReflectionPad, 7x7 conv, norm, ReLU; 2 x (stride-2 conv, norm, ReLU); n blocks of
    [pad, conv, norm, ReLU, (dropout), pad, conv, norm]; 2 x (transposed conv, norm, ReLU); pad, 7x7 conv, tanh."""
    state, bias = {}, norm != "batch"
    _conv(state, "model.1", input_nc, ngf, 7, bias)
    _norm(state, "model.2", ngf, norm)
    _conv(state, "model.4", ngf, 2 * ngf, 3, bias)
    _norm(state, "model.5", 2 * ngf, norm)
    _conv(state, "model.7", 2 * ngf, 4 * ngf, 3, bias)
    _norm(state, "model.8", 4 * ngf, norm)
    second = 6 if dropout else 5
    for b in range(n_blocks):
        key = f"model.{10 + b}.conv_block"
        _conv(state, f"{key}.1", 4 * ngf, 4 * ngf, 3, bias)
        _norm(state, f"{key}.2", 4 * ngf, norm)
        _conv(state, f"{key}.{second}", 4 * ngf, 4 * ngf, 3, bias)
        _norm(state, f"{key}.{second + 1}", 4 * ngf, norm)
    i = 10 + n_blocks
    _conv(state, f"model.{i}", 4 * ngf, 2 * ngf, 3, bias, transposed=True)
    _norm(state, f"model.{i + 1}", 2 * ngf, norm)
    _conv(state, f"model.{i + 3}", 2 * ngf, ngf, 3, bias, transposed=True)
    _norm(state, f"model.{i + 4}", ngf, norm)
    _conv(state, f"model.{i + 7}", ngf, output_nc, 7, True)
    return state


def reference_unet_state(input_nc=3, output_nc=3, num_downs=8, ngf=64, norm="batch", dropout=False):
    state, bias = {}, norm != "batch"
    # (outer_nc, inner_nc) of each block from the outermost inwards.
    widths = [(output_nc, ngf), (ngf, 2 * ngf), (2 * ngf, 4 * ngf), (4 * ngf, 8 * ngf)]
    widths += [(8 * ngf, 8 * ngf)] * (num_downs - 4)
    prefix = "model"
    for depth, (outer, inner) in enumerate(widths):
        innermost = depth == len(widths) - 1
        if depth == 0:  # [downconv, submodule, uprelu, upconv, tanh]
            _conv(state, f"{prefix}.model.0", input_nc, inner, 4, bias)
            _conv(state, f"{prefix}.model.3", inner * 2, outer, 4, True, transposed=True)
            prefix = f"{prefix}.model.1"
        elif innermost:  # [downrelu, downconv, uprelu, upconv, upnorm]
            _conv(state, f"{prefix}.model.1", outer, inner, 4, bias)
            _conv(state, f"{prefix}.model.3", inner, outer, 4, bias, transposed=True)
            _norm(state, f"{prefix}.model.4", outer, norm)
        else:  # [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm, (dropout)]
            _conv(state, f"{prefix}.model.1", outer, inner, 4, bias)
            _norm(state, f"{prefix}.model.2", inner, norm)
            _conv(state, f"{prefix}.model.5", inner * 2, outer, 4, bias, transposed=True)
            _norm(state, f"{prefix}.model.6", outer, norm)
            prefix = f"{prefix}.model.3"
    return state
