"""HPIPM's tree OCP QP called directly through its C API (ctypes), workspace allocated once.

CasADi's wheel ships HPIPM itself (``libhpipm.so`` and ``libblasfeo.so`` next to the
``casadi`` package); CasADi's ``conic("hpipm")`` interface allocates HPIPM's workspace on
every call, boxes every variable and knows chains only. :class:`HpipmTree` sets up HPIPM's
*tree* OCP QP once (dimensions, QP, solution, IPM arguments and workspace, all in buffers
owned by the object), and each solve only copies the node data in and calls
``d_tree_ocp_qp_ipm_solve``. The scenario tree is HPIPM's own (``sctree``: ``md``
realisations per branching stage, robust horizon ``Nr``, horizon ``Nh``; nodes numbered
breadth first, an edge ``e`` leads into node ``e + 1``). A chain is the tree with
``md = 1``, ``Nr = 0``.

Matrices are column-major, as HPIPM packs them: dynamics ``x_child = A x + B u + b`` per
edge; cost ``0.5 [u; x]' [R S; S' Q] [u; x] + r' u + q' x`` per node (``S`` is
``nu x nx``); rows ``lg <= D u + C x <= ug``; boxes on the node's ``[u; x]`` entries
``idxb`` (inputs first). Infinite bounds are masked out (``*_mask``), never passed.

Struct sizes: HPIPM exports ``*_strsize`` for the tree dimension and QP structs; for the
tree solution, IPM argument and workspace structs and the scenario tree it exports none, so
their storage is :data:`STRUCT_BOUND_FACTOR` times the size of the OCP QP counterpart the
library reports (the tree structs have the same fields or fewer in HPIPM's headers; the
scenario tree is two pointers, four ints and a size). Every ``*_memsize`` buffer is
allocated as the library asks. Buffers live as long as the object (HPIPM keeps pointers
into them). A missing library or symbol raises :class:`HpipmLibraryError` before anything
is allocated; the caller then uses CasADi's interface.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

STRUCT_BOUND_FACTOR = 4
"""Storage for a struct with no ``*_strsize`` export, in multiples of its OCP QP
counterpart's ``*_strsize`` (see the module doc)."""

MODES = {"speed_abs": 0, "speed": 1, "balance": 2, "robust": 3}
"""HPIPM's ``enum hpipm_mode``."""

_SIZE = ctypes.c_size_t
_P = ctypes.c_void_p
_I = ctypes.c_int

_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "sctree_memsize": (_SIZE, [_I, _I, _I]),
    "sctree_create": (None, [_I, _I, _I, _P, _P]),
    "sctree_cast_to_tree": (None, [_P, _P]),
    "TREE_OCP_QP_DIM_STRSIZE": (_SIZE, []),
    "d_tree_ocp_qp_dim_memsize": (_SIZE, [_I]),
    "d_tree_ocp_qp_dim_create": (None, [_I, _P, _P]),
    "d_tree_ocp_qp_dim_set_tree": (None, [_P, _P]),
    "d_tree_ocp_qp_strsize": (_SIZE, []),
    "d_tree_ocp_qp_memsize": (_SIZE, [_P]),
    "d_tree_ocp_qp_create": (None, [_P, _P, _P]),
    "d_tree_ocp_qp_sol_memsize": (_SIZE, [_P]),
    "d_tree_ocp_qp_sol_create": (None, [_P, _P, _P]),
    "d_tree_ocp_qp_ipm_arg_memsize": (_SIZE, [_P]),
    "d_tree_ocp_qp_ipm_arg_create": (None, [_P, _P, _P]),
    "d_tree_ocp_qp_ipm_arg_set_default": (None, [_I, _P]),
    "d_tree_ocp_qp_ipm_ws_memsize": (_SIZE, [_P, _P]),
    "d_tree_ocp_qp_ipm_ws_create": (None, [_P, _P, _P, _P]),
    "d_tree_ocp_qp_ipm_solve": (None, [_P, _P, _P, _P]),
    "d_tree_ocp_qp_ipm_get_status": (None, [_P, _P]),
    "d_tree_ocp_qp_ipm_get_iter": (None, [_P, _P]),
    "d_ocp_qp_sol_strsize": (_SIZE, []),
    "d_ocp_qp_ipm_arg_strsize": (_SIZE, []),
    "d_ocp_qp_ipm_ws_strsize": (_SIZE, []),
}
for _dim in ("nx", "nu", "nbx", "nbu", "ng", "ns"):
    _SIGNATURES[f"d_tree_ocp_qp_dim_set_{_dim}"] = (None, [_I, _I, _P])
_INT_ARGS = {
    "iter_max": "iter_max",
    "warm_start": "warm_start",
    "split_step": "split_step",
    "pred_corr": "pred_corr",
    "cond_pred_corr": "cond_pred_corr",
}
"""Integer IPM options (CasADi's names) and HPIPM's tree setter for each."""
_FLOAT_ARGS = {
    "res_g_max": "tol_stat",
    "res_b_max": "tol_eq",
    "res_d_max": "tol_ineq",
    "res_m_max": "tol_comp",
    "mu0": "mu0",
    "reg_prim": "reg_prim",
}
"""Float IPM options (CasADi's names) and HPIPM's tree setter for each."""
for _arg in list(_INT_ARGS.values()) + list(_FLOAT_ARGS.values()):
    _SIGNATURES[f"d_tree_ocp_qp_ipm_arg_set_{_arg}"] = (None, [_P, _P])
_SETTERS = ("A", "B", "b", "Q", "S", "R", "q", "r", "idxb", "lb", "ub", "C", "D", "lg", "ug")
for _f in _SETTERS + ("lb_mask", "ub_mask", "lg_mask", "ug_mask"):
    _SIGNATURES[f"d_tree_ocp_qp_set_{_f}"] = (None, [_I, _P, _P])
for _f in ("u", "x"):  # (node, sol, out)
    _SIGNATURES[f"d_tree_ocp_qp_sol_get_{_f}"] = (None, [_I, _P, _P])

STATUS_TEXT = {0: "success", 1: "max iterations", 2: "minimum step length", 3: "NaN"}
"""HPIPM's ``enum hpipm_status``."""


class HpipmLibraryError(RuntimeError):
    """HPIPM's C library (CasADi's copy) or one of the functions used is not available."""


_LIB: Any = None


def library() -> Any:
    """CasADi's ``libhpipm.so`` with the functions used here typed; raises if unusable."""
    global _LIB
    if _LIB is not None:
        return _LIB
    try:
        import casadi

        base = os.path.dirname(casadi.__file__)
    except ImportError as exc:  # pragma: no cover - casadi is a dependency
        raise HpipmLibraryError(f"casadi not importable: {exc}") from exc
    paths = {n: os.path.join(base, n) for n in ("libblasfeo.so", "libhpipm.so")}
    for name, path in paths.items():
        if not os.path.exists(path):
            raise HpipmLibraryError(f"{name} not found next to casadi ({base})")
    try:
        ctypes.CDLL(paths["libblasfeo.so"], mode=ctypes.RTLD_GLOBAL)
        lib = ctypes.CDLL(paths["libhpipm.so"])
    except OSError as exc:
        raise HpipmLibraryError(f"cannot load HPIPM from {base}: {exc}") from exc
    missing = [n for n in _SIGNATURES if not hasattr(lib, n)]
    if missing:
        raise HpipmLibraryError(
            f"{paths['libhpipm.so']} lacks {', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        )
    for name, (res, args) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    _LIB = lib
    return lib


def _buf(size: int) -> Any:
    """Zeroed memory that stays put (ctypes owns it; 16-byte aligned; HPIPM asks 0 bytes
    for structs without dynamic memory)."""
    if size < 0 or size > 1 << 34:
        raise HpipmLibraryError(f"HPIPM asked for an implausible buffer of {size} bytes")
    return ctypes.create_string_buffer(max(int(size), 64))


class HpipmTree:
    """HPIPM's tree OCP QP with fixed dimensions: set data per node, solve, read the step.

    ``nx, nu, nbx, nbu, ng`` are per node (breadth-first numbering of ``sctree(md, nr,
    nh)``). The data arrays below are owned here and written in place by the caller
    (:attr:`A`, :attr:`B`, ... are flat float64 arrays, node/edge blocks back to back,
    column-major); :meth:`solve` hands them to HPIPM and returns ``(status, iterations)``;
    :attr:`ux` then holds every node's ``[u; x]``.
    """

    def __init__(
        self,
        md: int,
        nr: int,
        nh: int,
        nx: Sequence[int],
        nu: Sequence[int],
        nbx: Sequence[int],
        nbu: Sequence[int],
        ng: Sequence[int],
        idxb: Sequence[Sequence[int]],
        opts: dict[str, Any],
    ) -> None:
        lib = library()
        self._lib = lib
        nn = len(nx)
        keep: list[Any] = []  # everything HPIPM points into
        self._keep = keep
        st_bound = STRUCT_BOUND_FACTOR * int(lib.d_ocp_qp_sol_strsize())
        sct, tree = _buf(st_bound), _buf(st_bound)
        sct_mem = _buf(int(lib.sctree_memsize(md, nr, nh)))
        lib.sctree_create(md, nr, nh, sct, sct_mem)
        lib.sctree_cast_to_tree(sct, tree)
        keep += [sct, tree, sct_mem]
        n_nodes = sum(md ** min(s, nr) for s in range(nh + 1))
        if n_nodes != nn:
            raise ValueError(f"HPIPM tree: {nn} node sizes for a tree of {n_nodes} nodes")
        dim = _buf(int(lib.TREE_OCP_QP_DIM_STRSIZE()))
        dim_mem = _buf(int(lib.d_tree_ocp_qp_dim_memsize(nn)))
        lib.d_tree_ocp_qp_dim_create(nn, dim, dim_mem)
        lib.d_tree_ocp_qp_dim_set_tree(tree, dim)
        keep += [dim, dim_mem]
        for name, vals in (("nx", nx), ("nu", nu), ("nbx", nbx), ("nbu", nbu), ("ng", ng)):
            setter = getattr(lib, f"d_tree_ocp_qp_dim_set_{name}")
            for i, v in enumerate(vals):
                setter(i, int(v), dim)
        for i in range(nn):
            lib.d_tree_ocp_qp_dim_set_ns(i, 0, dim)
        qp = _buf(int(lib.d_tree_ocp_qp_strsize()))
        qp_mem = _buf(int(lib.d_tree_ocp_qp_memsize(dim)))
        lib.d_tree_ocp_qp_create(dim, qp, qp_mem)
        sol = _buf(st_bound)
        sol_mem = _buf(int(lib.d_tree_ocp_qp_sol_memsize(dim)))
        lib.d_tree_ocp_qp_sol_create(dim, sol, sol_mem)
        arg = _buf(STRUCT_BOUND_FACTOR * int(lib.d_ocp_qp_ipm_arg_strsize()))
        arg_mem = _buf(int(lib.d_tree_ocp_qp_ipm_arg_memsize(dim)))
        lib.d_tree_ocp_qp_ipm_arg_create(dim, arg, arg_mem)
        mode = opts.get("mode", "robust")
        if mode not in MODES:
            raise ValueError(f"HPIPM mode {mode!r}: expected one of {sorted(MODES)}")
        lib.d_tree_ocp_qp_ipm_arg_set_default(MODES[mode], arg)
        unknown = set(opts) - set(_INT_ARGS) - set(_FLOAT_ARGS) - {"mode"}
        if unknown:
            raise ValueError(f"HPIPM tree options: unknown {sorted(unknown)}")
        for key, name in _INT_ARGS.items():
            if key in opts:
                v_i = ctypes.c_int(int(opts[key]))
                getattr(lib, f"d_tree_ocp_qp_ipm_arg_set_{name}")(ctypes.byref(v_i), arg)
        for key, name in _FLOAT_ARGS.items():
            if key in opts:
                v_d = ctypes.c_double(float(opts[key]))
                getattr(lib, f"d_tree_ocp_qp_ipm_arg_set_{name}")(ctypes.byref(v_d), arg)
        ws = _buf(STRUCT_BOUND_FACTOR * int(lib.d_ocp_qp_ipm_ws_strsize()))
        ws_mem = _buf(int(lib.d_tree_ocp_qp_ipm_ws_memsize(dim, arg)))
        lib.d_tree_ocp_qp_ipm_ws_create(dim, arg, ws, ws_mem)
        keep += [qp, qp_mem, sol, sol_mem, arg, arg_mem, ws, ws_mem]
        self._qp, self._sol, self._arg, self._ws = qp, sol, arg, ws
        self.n_nodes = nn
        self.nx, self.nu = list(map(int, nx)), list(map(int, nu))
        self.nb = [int(a) + int(b) for a, b in zip(nbx, nbu, strict=True)]
        self.ng = list(map(int, ng))
        parent = _bfs_parents(md, nr, nh)
        self.parent = parent
        """Parent node of each node (-1 for the root)."""
        # flat data arrays and the offsets of each node's / edge's block
        edges = range(nn - 1)
        self.off_A = _offsets([self.nx[e + 1] * self.nx[parent[e + 1]] for e in edges])
        self.off_B = _offsets([self.nx[e + 1] * self.nu[parent[e + 1]] for e in edges])
        self.off_b = _offsets([self.nx[e + 1] for e in edges])
        self.off_Q = _offsets([n * n for n in self.nx])
        self.off_S = _offsets([a * b for a, b in zip(self.nu, self.nx, strict=True)])
        self.off_R = _offsets([n * n for n in self.nu])
        self.off_q = _offsets(self.nx)
        self.off_r = _offsets(self.nu)
        self.off_bx = _offsets(self.nb)
        self.off_C = _offsets([a * b for a, b in zip(self.ng, self.nx, strict=True)])
        self.off_D = _offsets([a * b for a, b in zip(self.ng, self.nu, strict=True)])
        self.off_g = _offsets(self.ng)
        self.off_ux = _offsets([a + b for a, b in zip(self.nu, self.nx, strict=True)])
        arrays: dict[str, NDArray[np.float64]] = {}
        for name, off in (
            ("A", self.off_A),
            ("B", self.off_B),
            ("b", self.off_b),
            ("Q", self.off_Q),
            ("S", self.off_S),
            ("R", self.off_R),
            ("q", self.off_q),
            ("r", self.off_r),
            ("lb", self.off_bx),
            ("ub", self.off_bx),
            ("lb_mask", self.off_bx),
            ("ub_mask", self.off_bx),
            ("C", self.off_C),
            ("D", self.off_D),
            ("lg", self.off_g),
            ("ug", self.off_g),
            ("lg_mask", self.off_g),
            ("ug_mask", self.off_g),
            ("ux", self.off_ux),
        ):
            arrays[name] = np.zeros(max(int(off[-1]), 1))
        self.data = arrays
        """Flat data arrays by HPIPM field name (write in place; masks: 1 bound, 0 none)."""
        idx_all = np.zeros(max(int(self.off_bx[-1]), 1), dtype=np.intc)
        for i, ib in enumerate(idxb):
            if len(ib) != self.nb[i]:
                raise ValueError(f"HPIPM tree node {i}: {len(ib)} box indices for nb {self.nb[i]}")
            idx_all[self.off_bx[i] : self.off_bx[i + 1]] = ib
        keep.append(idx_all)
        self._calls: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._mask_calls: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._mask_sent: NDArray[np.float64] | None = None
        self._get: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._build_calls(idx_all)
        self._status = ctypes.c_int(-1)
        self._iter = ctypes.c_int(0)

    def _build_calls(self, idx_all: NDArray[np.intc]) -> None:
        """Every setter call with its (fixed) pointers, once."""
        lib, qp, d = self._lib, self._qp, self.data

        def ptr(arr: NDArray[Any], off: int) -> int:
            return int(arr.ctypes.data) + int(off) * arr.itemsize

        calls = self._calls
        for e in range(self.n_nodes - 1):
            child, dad = e + 1, self.parent[e + 1]
            if self.nx[child] and self.nx[dad]:
                calls.append((lib.d_tree_ocp_qp_set_A, (e, ptr(d["A"], self.off_A[e]), qp)))
            if self.nx[child] and self.nu[dad]:
                calls.append((lib.d_tree_ocp_qp_set_B, (e, ptr(d["B"], self.off_B[e]), qp)))
            if self.nx[child]:
                calls.append((lib.d_tree_ocp_qp_set_b, (e, ptr(d["b"], self.off_b[e]), qp)))
        for i in range(self.n_nodes):
            nx, nu, nb, ng = self.nx[i], self.nu[i], self.nb[i], self.ng[i]
            node: list[tuple[str, NDArray[Any], int, bool]] = [
                ("Q", d["Q"], self.off_Q[i], nx > 0),
                ("S", d["S"], self.off_S[i], nx > 0 and nu > 0),
                ("R", d["R"], self.off_R[i], nu > 0),
                ("q", d["q"], self.off_q[i], nx > 0),
                ("r", d["r"], self.off_r[i], nu > 0),
                ("idxb", idx_all, self.off_bx[i], nb > 0),
                ("lb", d["lb"], self.off_bx[i], nb > 0),
                ("ub", d["ub"], self.off_bx[i], nb > 0),
                ("lb_mask", d["lb_mask"], self.off_bx[i], nb > 0),
                ("ub_mask", d["ub_mask"], self.off_bx[i], nb > 0),
                ("C", d["C"], self.off_C[i], ng > 0 and nx > 0),
                ("D", d["D"], self.off_D[i], ng > 0 and nu > 0),
                ("lg", d["lg"], self.off_g[i], ng > 0),
                ("ug", d["ug"], self.off_g[i], ng > 0),
                ("lg_mask", d["lg_mask"], self.off_g[i], ng > 0),
                ("ug_mask", d["ug_mask"], self.off_g[i], ng > 0),
            ]
            for name, arr, off, used in node:
                if used:
                    fn = getattr(lib, f"d_tree_ocp_qp_set_{name}")
                    call = (fn, (i, ptr(arr, int(off)), qp))
                    if name == "idxb":  # fixed: set once
                        fn(*call[1])
                    elif name.endswith("_mask"):  # set when they change
                        self._mask_calls.append(call)
                    else:
                        calls.append(call)
            ux = d["ux"]
            if nu:
                self._get.append(
                    (lib.d_tree_ocp_qp_sol_get_u, (i, self._sol, ptr(ux, self.off_ux[i])))
                )
            if nx:
                self._get.append(
                    (lib.d_tree_ocp_qp_sol_get_x, (i, self._sol, ptr(ux, self.off_ux[i] + nu)))
                )

    def solve(self) -> tuple[int, int]:
        """Hand the data arrays to HPIPM and solve; ``(status, iterations)``, ``ux`` filled."""
        for fn, args in self._calls:
            fn(*args)
        d = self.data
        masks = np.concatenate([d["lb_mask"], d["ub_mask"], d["lg_mask"], d["ug_mask"]])
        if self._mask_sent is None or not np.array_equal(masks, self._mask_sent):
            for fn, args in self._mask_calls:
                fn(*args)
            self._mask_sent = masks
        lib = self._lib
        lib.d_tree_ocp_qp_ipm_solve(self._qp, self._sol, self._arg, self._ws)
        lib.d_tree_ocp_qp_ipm_get_status(self._ws, ctypes.byref(self._status))
        lib.d_tree_ocp_qp_ipm_get_iter(self._ws, ctypes.byref(self._iter))
        for fn, args in self._get:
            fn(*args)
        return int(self._status.value), int(self._iter.value)


def _offsets(sizes: Sequence[int]) -> NDArray[np.int64]:
    return np.concatenate([[0], np.cumsum(np.asarray(sizes, dtype=np.int64))]).astype(np.int64)


def _bfs_parents(md: int, nr: int, nh: int) -> list[int]:
    """Parent of each node of HPIPM's ``sctree`` (its breadth-first numbering)."""
    parent = [-1]
    stage = [0]
    i = 0
    while i < len(parent):
        s = stage[i]
        kids = md if s < nr else (1 if s < nh else 0)
        for _ in range(kids):
            parent.append(i)
            stage.append(s + 1)
        i += 1
    return parent
