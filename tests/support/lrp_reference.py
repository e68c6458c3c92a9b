"""An independent float64 reference for the LRP rules, for testing the attribution engine.

Each supported layer is turned into its exact dense linear map ``z = a @ W + b`` (found by
probing a float64 copy of the layer with basis vectors) together with its connectivity
(which input feeds which output). The rules are then written as explicit per-sample matrix
formulas in NumPy over that operator, without any of the engine's machinery.

Notation (one sample; ``i`` runs over the flattened inputs, ``j`` over the flattened outputs):
``z_j = sum_i a_i W_ij + b_j``, ``x^+ = max(x, 0)``, ``x^- = min(x, 0)``,
``stab(d) = d + eps * sign(d)`` with ``sign(0) = +1``. A rule distributes ``R_j`` as
``R_i = sum_j M_ij R_j / D_j`` for a rule-specific numerator ``M`` and denominator ``D``.

Conventions the specification leaves open:

* A share ``M_ij / D_j`` whose denominator is exactly zero (only possible with ``eps = 0``,
  or for Flat at an output with no connected input) is taken as zero: that output's relevance
  is dropped instead of producing NaN or inf.
* Gamma is always the output-sign form of the specification: outputs with ``z_j >= 0``
  spread over ``a^+ (w + g w^+) + a^- (w + g w^-)``, outputs with ``z_j < 0`` over
  ``a^+ (w + g w^-) + a^- (w + g w^+)``. ``signed=False`` selects the single-denominator
  form ``a (w + g w^+)`` for every output instead, which is exact only where outputs with
  ``z_j < 0`` receive no relevance (the engine's fast path behind a ReLU).
* AlphaBeta uses its signed-input generalized form for a sample when that sample has a
  negative input; ``signed=True``/``False`` forces one form. Both forms are equal anyway,
  since ``a^+ w^+ + a^- w^- = (a w)^+`` and ``a^+ w^- + a^- w^+ = (a w)^-``.
* UnifiedRule with ``gamma1 != 0`` (weights that keep their sign, plus a sign-favouring
  term) lets the ``gamma1p``/``gamma1n`` terms act on the weights of the output's own
  sign: for ``z_j < 0``, ``u^A`` uses ``gamma1p w^-`` and ``u^B`` uses ``gamma1n w^+``.
  With ``gamma1 = 0`` every term is sign-definite and no output-sign choice is made, so
  the alpha-beta and z+ presets stay the named (output-sign independent) rules.
* Where a rule chooses by the sign of ``z_j``, ``z_j`` is the rule's own pre-activation:
  ``a @ W + b``, or ``a @ W`` when ``zero_bias`` is set (for UnifiedRule: when its bias is
  not included).
* ``zero_bias=True`` drops the bias from every rule, UnifiedRule's ``include_bias`` included.
* Flat has no stabilizer: ``R_i = sum_j R_j / n_j`` with ``n_j`` the number of inputs
  connected to output ``j``.
* Flat and WSquare exclude the bias unless ``include_bias`` is set: then it is one more
  input of value 1 whose weight is transformed like the others (``1`` resp. ``b_j^2``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

DEFAULT_EPS = 1e-6

SUPPORTED_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
PASS_THROUGH_LAYERS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.Flatten, nn.Identity)

RULES = ("epsilon", "gamma", "alpha_beta", "zplus", "zbox", "wsquare", "flat", "unified")

# Parameter names each rule accepts, and which of them have no default.
_ALLOWED = {
    "epsilon": {"eps"},
    "gamma": {"gamma", "eps"},
    "alpha_beta": {"alpha", "beta", "eps"},
    "zplus": {"eps"},
    "zbox": {"eps"},
    "wsquare": {"eps", "include_bias"},
    "flat": {"include_bias"},
    "unified": {
        "alpha",
        "beta",
        "eps",
        "theta0",
        "theta1",
        "gamma0",
        "gamma1",
        "gamma1p",
        "gamma1n",
        "gamma2",
        "include_bias",
    },
}
_REQUIRED = {"gamma": {"gamma"}, "alpha_beta": {"alpha", "beta"}}

# UnifiedRule coefficients when not given: LRP-0 (with the default stabilizer).
UNIFIED_DEFAULTS: dict[str, Any] = {
    "alpha": 1.0,
    "beta": 0.0,
    "eps": DEFAULT_EPS,
    "theta0": 0.0,
    "theta1": 1.0,
    "gamma0": 0.0,
    "gamma1": 1.0,
    "gamma1p": 0.0,
    "gamma1n": 0.0,
    "gamma2": 0.0,
    "include_bias": False,
}

_CHUNK = 512  # basis vectors per probing forward pass


@dataclass(frozen=True)
class DenseOperator:
    """``z = a @ W + b`` over flattened inputs/outputs, with the connectivity mask."""

    w: np.ndarray  # (n_in, n_out) float64
    b: np.ndarray  # (n_out,) float64
    connected: np.ndarray  # (n_in, n_out) bool
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


# ---------------------------------------------------------------------------------------------
# Dense operator by probing


def _probe(module: nn.Module, input_shape: tuple[int, ...]) -> np.ndarray:
    """Rows ``module(e_k)`` for every basis vector ``e_k``, flattened: (n_in, n_out)."""
    n_in = math.prod(input_shape)
    rows = []
    threads = torch.get_num_threads()
    # One thread: these small forward passes only lose time to OpenMP on a busy machine.
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for start in range(0, n_in, _CHUNK):
                stop = min(n_in, start + _CHUNK)
                basis = torch.zeros((stop - start, n_in), dtype=torch.float64)
                basis[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
                out = module(basis.reshape(stop - start, *input_shape))
                rows.append(out.reshape(stop - start, -1).numpy().copy())
    finally:
        torch.set_num_threads(threads)
    return np.concatenate(rows, axis=0)


def _operator(layer: nn.Module, input_shape: Sequence[int]) -> DenseOperator:
    if not isinstance(layer, SUPPORTED_LAYERS):
        raise TypeError(f"no dense operator for {type(layer).__name__}")
    padding_mode = getattr(layer, "padding_mode", "zeros")
    if padding_mode != "zeros":
        # Reflect/circular padding can feed one input to one output through several taps,
        # which breaks the one-weight-per-connection structure the rules rely on.
        raise NotImplementedError(f"padding_mode={padding_mode!r} is not supported")
    in_shape = tuple(int(s) for s in input_shape)

    full = copy.deepcopy(layer).double().eval()
    with torch.no_grad():
        bias_out = full(torch.zeros((1, *in_shape), dtype=torch.float64))
    out_shape = tuple(bias_out.shape[1:])
    b = bias_out.reshape(-1).numpy().copy()

    linear = copy.deepcopy(full)
    ones = copy.deepcopy(full)
    with torch.no_grad():
        if linear.bias is not None:
            linear.bias.zero_()
            ones.bias.zero_()
        ones.weight.fill_(1.0)
    w = _probe(linear, in_shape)
    connected = _probe(ones, in_shape) != 0.0
    return DenseOperator(w=w, b=b, connected=connected, in_shape=in_shape, out_shape=out_shape)


def dense_operator(
    layer: nn.Module, input_shape: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """The exact linear map of ``layer`` on inputs of shape ``input_shape`` (no batch axis).

    Returns ``(W, b, connected, out_shape)``: ``W`` (n_in, n_out) and ``b`` (n_out,) in float64
    with ``layer(a).flatten() == a.flatten() @ W + b``, and the boolean ``connected`` (n_in,
    n_out) that is true exactly where input ``i`` lies in output ``j``'s receptive field
    (padding excluded, groups respected), whatever the weight values are.
    """
    op = _operator(layer, input_shape)
    return op.w, op.b, op.connected, op.out_shape


# ---------------------------------------------------------------------------------------------
# Elementwise helpers


def _pos(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _neg(x: np.ndarray) -> np.ndarray:
    return np.minimum(x, 0.0)


def stab(d: np.ndarray | float, eps: float) -> np.ndarray:
    """``d + eps * sign(d)`` with ``sign(0) = +1``."""
    d = np.asarray(d, dtype=np.float64)
    return d + eps * np.where(d >= 0.0, 1.0, -1.0)


def _ratio(r: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``r / d`` elementwise (``d`` broadcast), zero where ``d == 0``."""
    out = np.zeros(np.broadcast_shapes(r.shape, d.shape), dtype=np.float64)
    np.divide(r, d, out=out, where=d != 0.0)
    return out


def _spread(m: np.ndarray, d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``R_i = sum_j (m_ij / d_j) r_j``; the share ``m_ij / d_j`` is taken first, so that tiny
    denominators (whose numerators are just as tiny) do not overflow."""
    return (_ratio(m, d[None, :]) * r[None, :]).sum(axis=1)


# ---------------------------------------------------------------------------------------------
# Rules for one sample: a (n_in,), r (n_out,) -> (n_in,); m numerators, d denominators


def _epsilon(op: DenseOperator, a, r, eps: float, bias: bool):
    m = a[:, None] * op.w
    z = m.sum(axis=0) + (op.b if bias else 0.0)
    return _spread(m, stab(z, eps), r)


def _gamma_single(op: DenseOperator, a, r, gamma: float, eps: float, bias: bool):
    m = a[:, None] * (op.w + gamma * _pos(op.w))
    bias_term = op.b + gamma * _pos(op.b) if bias else 0.0
    return _spread(m, stab(m.sum(axis=0) + bias_term, eps), r)


def _gamma(op: DenseOperator, a, r, gamma: float, eps: float, bias: bool):
    w, b = op.w, op.b
    ap, an = _pos(a)[:, None], _neg(a)[:, None]
    up = ap * (w + gamma * _pos(w)) + an * (w + gamma * _neg(w))  # outputs with z_j >= 0
    down = ap * (w + gamma * _neg(w)) + an * (w + gamma * _pos(w))  # outputs with z_j < 0
    z = (a[:, None] * w).sum(axis=0) + (b if bias else 0.0)
    rising = z >= 0.0
    m = np.where(rising[None, :], up, down)
    if bias:
        bias_term = np.where(rising, b + gamma * _pos(b), b + gamma * _neg(b))
    else:
        bias_term = 0.0
    return _spread(m, stab(m.sum(axis=0) + bias_term, eps), r)


def _alpha_beta(op: DenseOperator, a, r, alpha, beta, eps, bias: bool, signed: bool):
    w, b = op.w, op.b
    if signed:
        ap, an = _pos(a)[:, None], _neg(a)[:, None]
        m_pos = ap * _pos(w) + an * _neg(w)
        m_neg = ap * _neg(w) + an * _pos(w)
    else:
        c = a[:, None] * w
        m_pos, m_neg = _pos(c), _neg(c)
    d_pos = m_pos.sum(axis=0) + (_pos(b) if bias else 0.0)
    d_neg = m_neg.sum(axis=0) + (_neg(b) if bias else 0.0)
    return alpha * _spread(m_pos, stab(d_pos, eps), r) - beta * _spread(m_neg, stab(d_neg, eps), r)


def _zbox(op: DenseOperator, a, r, low, high, eps: float):
    w = op.w
    m = a[:, None] * w - low[:, None] * _pos(w) - high[:, None] * _neg(w)
    return _spread(m, stab(m.sum(axis=0), eps), r)


def _wsquare(op: DenseOperator, r, eps: float, bias: bool):
    m = op.w**2
    d = m.sum(axis=0) + (op.b**2 if bias else 0.0)  # the bias: a constant input 1, squared
    return _spread(m, stab(d, eps), r)


def _flat(op: DenseOperator, r, bias: bool):
    m = op.connected.astype(np.float64)
    return _spread(m, m.sum(axis=0) + (1.0 if bias else 0.0), r)  # the bias: one more input


def _unified(op: DenseOperator, a, r, p: Mapping[str, Any], bias: bool):
    w, b, conn = op.w, op.b, op.connected
    t = (p["theta0"] + p["theta1"] * a)[:, None]
    common = p["gamma0"] + p["gamma1"] * w + p["gamma2"] * w**2
    if p["gamma1"] != 0.0:  # own-sign weights for the sign-favouring terms
        z = (a[:, None] * w).sum(axis=0) + (b if bias else 0.0)
        rising = (z >= 0.0)[None, :]
    else:
        rising = np.ones((1, w.shape[1]), dtype=bool)
    favoured_a = np.where(rising, _pos(w), _neg(w))
    favoured_b = np.where(rising, _neg(w), _pos(w))
    u_a = t * np.where(conn, common + p["gamma1p"] * favoured_a, 0.0)
    u_b = t * np.where(conn, common + p["gamma1n"] * favoured_b, 0.0)
    d_a, d_b = u_a.sum(axis=0), u_b.sum(axis=0)
    if bias:
        # The bias is the weight of an extra constant input 1 on every output.
        t_bias = p["theta0"] + p["theta1"] * 1.0
        common_b = p["gamma0"] + p["gamma1"] * b + p["gamma2"] * b**2
        d_a = d_a + t_bias * (common_b + p["gamma1p"] * np.where(rising[0], _pos(b), _neg(b)))
        d_b = d_b + t_bias * (common_b + p["gamma1n"] * np.where(rising[0], _neg(b), _pos(b)))
    eps = p["eps"]
    return p["alpha"] * _spread(u_a, stab(d_a, eps), r) - p["beta"] * _spread(
        u_b, stab(d_b, eps), r
    )


# ---------------------------------------------------------------------------------------------
# Public entry points


def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.array(x, dtype=np.float64)  # a copy: never aliases the caller's data


def _check_params(rule: str, params: Mapping[str, Any]) -> dict[str, Any]:
    if rule not in _ALLOWED:
        raise ValueError(f"unknown rule {rule!r}; expected one of {RULES}")
    params = dict(params or {})
    unknown = set(params) - _ALLOWED[rule]
    if unknown:
        raise ValueError(f"rule {rule!r} does not take {sorted(unknown)}")
    missing = _REQUIRED.get(rule, set()) - set(params)
    if missing:
        raise ValueError(f"rule {rule!r} needs {sorted(missing)}")
    if rule == "unified":
        return {**UNIFIED_DEFAULTS, **params}
    if "eps" in _ALLOWED[rule]:
        params.setdefault("eps", DEFAULT_EPS)
    return params


def _bounds(value: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if value is None:
        raise ValueError(f"rule 'zbox' needs {name}")
    return np.broadcast_to(np.asarray(value, dtype=np.float64), shape).reshape(shape[0], -1)


def reference_relevance(
    rule: str,
    params: Mapping[str, Any] | None,
    layer: nn.Module,
    a: np.ndarray,
    relevance_out: np.ndarray,
    *,
    low: Any = None,
    high: Any = None,
    zero_bias: bool = False,
    signed: bool | None = None,
) -> np.ndarray:
    """Input relevance ``(batch, *in_shape)`` of ``rule`` for one layer, in float64.

    ``a`` is the layer input ``(batch, *in_shape)`` and ``relevance_out`` the relevance of the
    layer output ``(batch, *out_shape)``. ``params`` are the rule's coefficients (``eps``
    defaults to 1e-6; ``gamma`` needs ``gamma``; ``alpha_beta`` needs ``alpha`` and ``beta``;
    ``unified`` takes ``alpha, beta, eps, theta0, theta1, gamma0, gamma1, gamma1p, gamma1n,
    gamma2, include_bias``, defaulting to LRP-0 as in ``UNIFIED_DEFAULTS``). ``low``/``high``
    are ZBox's bounds, broadcastable to ``a``. ``zero_bias`` drops the layer bias from the
    rule. ``signed`` picks the form of AlphaBeta (None: the generalized form for samples with a
    negative input; True/False force it or the simple form); for Gamma, ``signed=False``
    selects the single-denominator form, anything else the output-sign form.
    """
    p = _check_params(rule, params or {})
    a = _as_array(a)
    r = _as_array(relevance_out)
    op = _operator(layer, a.shape[1:])
    batch = a.shape[0]
    if r.shape != (batch, *op.out_shape):
        raise ValueError(f"relevance_out has shape {r.shape}, expected {(batch, *op.out_shape)}")
    a_flat = a.reshape(batch, -1)
    r_flat = r.reshape(batch, -1)
    use_bias = not zero_bias
    if rule == "zbox":
        lows = _bounds(low, "low", a.shape)
        highs = _bounds(high, "high", a.shape)

    out = np.empty_like(a_flat)
    for n in range(batch):
        an, rn = a_flat[n], r_flat[n]
        is_signed = bool(np.any(an < 0.0)) if signed is None else bool(signed)
        if rule == "epsilon":
            out[n] = _epsilon(op, an, rn, p["eps"], use_bias)
        elif rule == "gamma":
            form = _gamma_single if signed is False else _gamma
            out[n] = form(op, an, rn, float(p["gamma"]), p["eps"], use_bias)
        elif rule == "alpha_beta":
            out[n] = _alpha_beta(
                op, an, rn, float(p["alpha"]), float(p["beta"]), p["eps"], use_bias, is_signed
            )
        elif rule == "zplus":
            out[n] = _alpha_beta(op, an, rn, 1.0, 0.0, p["eps"], use_bias, is_signed)
        elif rule == "zbox":
            out[n] = _zbox(op, an, rn, lows[n], highs[n], p["eps"])
        elif rule == "wsquare":
            out[n] = _wsquare(op, rn, p["eps"], use_bias and bool(p.get("include_bias")))
        elif rule == "flat":
            out[n] = _flat(op, rn, use_bias and bool(p.get("include_bias")))
        else:  # unified
            out[n] = _unified(op, an, rn, p, use_bias and bool(p["include_bias"]))
    return out.reshape(a.shape)


def unified_params(preset: str, **coefficients: float) -> dict[str, Any]:
    """UnifiedRule coefficients that reproduce a named rule (non-negative inputs).

    ``preset`` is one of ``lrp0, epsilon, gamma, alpha_beta, zplus, wsquare, flat``;
    ``coefficients`` supplies ``eps``, ``gamma``, ``alpha``/``beta`` and ``include_bias``.
    ``eps`` defaults to 1e-6 (0 for lrp0); the named Flat rule has no stabilizer, so pass
    ``eps=0`` to reproduce it exactly.
    """
    zero = dict.fromkeys(("theta0", "theta1", "gamma0", "gamma1", "gamma1p", "gamma1n"), 0.0)
    base: dict[str, Any] = {**zero, "gamma2": 0.0, "alpha": 1.0, "beta": 0.0}
    extra = dict(coefficients)
    if preset in ("lrp0", "epsilon"):
        base.update(theta1=1.0, gamma1=1.0, eps=0.0 if preset == "lrp0" else DEFAULT_EPS)
    elif preset == "gamma":
        base.update(theta1=1.0, gamma1=1.0, gamma1p=float(extra.pop("gamma")), eps=DEFAULT_EPS)
    elif preset == "alpha_beta":
        base.update(
            theta1=1.0,
            gamma1p=1.0,
            gamma1n=1.0,
            alpha=float(extra.pop("alpha")),
            beta=float(extra.pop("beta")),
            eps=DEFAULT_EPS,
        )
    elif preset == "zplus":
        base.update(theta1=1.0, gamma1p=1.0, eps=DEFAULT_EPS)
    elif preset == "wsquare":
        base.update(theta0=1.0, gamma2=1.0, eps=DEFAULT_EPS)
    elif preset == "flat":
        base.update(theta0=1.0, gamma0=1.0, eps=DEFAULT_EPS)
    else:
        raise ValueError(f"unknown preset {preset!r}")
    unknown = set(extra) - {"eps", "include_bias"}
    if unknown:
        raise ValueError(f"preset {preset!r} does not take {sorted(unknown)}")
    base.update(extra)
    base.setdefault("include_bias", False)
    return base


def initial_relevance(logits: np.ndarray, target: int | Sequence[int]) -> np.ndarray:
    """The target logit at the target class (one class, or one per sample), zero elsewhere."""
    if logits.ndim != 2:
        raise ValueError(f"model output must be (batch, classes), got {logits.shape}")
    rows = np.arange(logits.shape[0])
    targets = np.broadcast_to(np.asarray(target, dtype=np.int64), rows.shape)
    relevance = np.zeros_like(logits)
    relevance[rows, targets] = logits[rows, targets]
    return relevance


def reference_network_lrp0(
    model: nn.Sequential, x: Any, target: int | Sequence[int], *, eps: float = 0.0
) -> np.ndarray:
    """LRP-0 (LRP-epsilon for ``eps > 0``) through a sequential ReLU network, layer by layer.

    ``model`` holds Linear/Conv layers (bias included in the rule), ReLU, Flatten and
    Identity; ``x`` is ``(batch, *in_shape)``; ``target`` one class or one per sample. The
    initial relevance is the target logit at the target and zero elsewhere.
    """
    net = copy.deepcopy(model).double().eval()
    acts = [torch.from_numpy(_as_array(x))]
    with torch.no_grad():
        for module in net:
            if not isinstance(module, SUPPORTED_LAYERS + PASS_THROUGH_LAYERS):
                raise TypeError(f"unsupported module {type(module).__name__}")
            acts.append(module(acts[-1]))
    relevance = initial_relevance(acts[-1].numpy(), target)
    for module, a_in in zip(reversed(list(net)), reversed(acts[:-1]), strict=True):
        a_np = a_in.numpy()
        if isinstance(module, SUPPORTED_LAYERS):
            relevance = reference_relevance("epsilon", {"eps": eps}, module, a_np, relevance)
        else:
            relevance = relevance.reshape(a_np.shape)
    return relevance
