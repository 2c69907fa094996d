"""Cost-sharing rules for cooperative cost games: the Shapley value, tree games and the nucleolus."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from itertools import combinations

import networkx as nx
import numpy as np
import pandas as pd
from scipy import sparse

from universal_service import milp

#: Most players for which :func:`shapley` enumerates every coalition (2**16 cost evaluations).
MAX_EXACT_SHAPLEY_PLAYERS = 16
#: Most players for which :func:`nucleolus` solves its LPs over every coalition (2**12 rows).
MAX_NUCLEOLUS_PLAYERS = 12

CostFunction = Callable[[frozenset], float]


def _players(players: Iterable[Hashable]) -> list[Hashable]:
    """The players as a list, refusing duplicates and an empty set."""
    out = list(players)
    if not out:
        raise ValueError("a cost game needs at least one player")
    if len(set(out)) != len(out):
        raise ValueError("players must be distinct")
    return out


class _Game:
    """A cost function memoised on coalitions, addressed by bit masks over ``players``."""

    def __init__(self, cost: CostFunction, players: Sequence[Hashable]) -> None:
        self.cost = cost
        self.players = list(players)
        self.n = len(self.players)
        self._memo: dict[int, float] = {0: 0.0}

    def coalition(self, mask: int) -> frozenset:
        return frozenset(p for i, p in enumerate(self.players) if mask >> i & 1)

    def __call__(self, mask: int) -> float:
        value = self._memo.get(mask)
        if value is None:
            value = float(self.cost(self.coalition(mask)))
            if not math.isfinite(value):
                raise ValueError(
                    f"cost of coalition {sorted(map(str, self.coalition(mask)))} is not finite"
                )
            self._memo[mask] = value
        return value


def shapley(
    cost: CostFunction,
    players: Iterable[Hashable],
    *,
    samples: int | None = None,
    seed: int = 0,
) -> pd.Series:
    """Shapley value of a cost game: each player's average marginal cost over all orders of arrival.

    Parameters
    ----------
    cost : callable
        ``cost(coalition)`` for a ``frozenset`` of players: the cost [CNY] of serving that
        coalition alone. The empty coalition costs 0 and is never passed. Each coalition is
        evaluated at most once (memoised).
    players : iterable of hashable
        Distinct players; the order of the result.
    samples : int, optional
        ``None`` (default): exact, over all ``2**n`` coalitions (at most
        ``MAX_EXACT_SHAPLEY_PLAYERS`` players). Otherwise the number of random orders of arrival
        (permutation sampling, Castro, Gómez and Tejada 2009).
    seed : int
        Seed of ``numpy.random.default_rng`` for the sampled orders.

    Returns
    -------
    pandas.Series
        Charge of each player [CNY], indexed by player; the charges sum to the grand
        coalition's cost (up to rounding). With ``samples``, ``series.attrs["stderr"]`` is the
        standard error of each estimate [CNY] (a Series; 0 when ``samples == 1``).

    Raises
    ------
    ValueError
        On duplicate or no players, a non-finite cost, ``samples < 1``, or more than
        ``MAX_EXACT_SHAPLEY_PLAYERS`` players without ``samples``.
    """
    names = _players(players)
    game = _Game(cost, names)
    n = game.n
    if samples is None:
        if n > MAX_EXACT_SHAPLEY_PLAYERS:
            raise ValueError(
                f"exact Shapley value over {n} players needs 2**{n} coalitions; at most "
                f"{MAX_EXACT_SHAPLEY_PLAYERS} players are enumerated, pass samples=... to estimate it"
            )
        return _shapley_exact(game)
    if int(samples) != samples or samples < 1:
        raise ValueError(f"samples must be a positive integer, not {samples!r}")
    return _shapley_sampled(game, int(samples), seed)


def _shapley_exact(game: _Game) -> pd.Series:
    n = game.n
    masks = np.arange(1 << n, dtype=np.int64)
    values = np.array([game(int(m)) for m in masks])
    sizes = np.zeros(1 << n, dtype=np.int64)
    for i in range(n):
        sizes += (masks >> i) & 1
    # weight of a coalition S not containing i: |S|! (n - |S| - 1)! / n!
    weight = np.array(
        [math.factorial(s) * math.factorial(n - s - 1) for s in range(n)], dtype=float
    )
    weight /= math.factorial(n)
    charges = np.empty(n)
    for i in range(n):
        without = masks[((masks >> i) & 1) == 0]
        marginal = values[without | (1 << i)] - values[without]
        charges[i] = float(np.dot(weight[sizes[without]], marginal))
    # spread the rounding residue so that the charges add up to the grand coalition's cost
    charges += (values[-1] - charges.sum()) / n
    return pd.Series(charges, index=pd.Index(game.players), name="shapley")


def _shapley_sampled(game: _Game, samples: int, seed: int) -> pd.Series:
    n = game.n
    rng = np.random.default_rng(seed)
    marginals = np.empty((samples, n))
    for k in range(samples):
        mask, before = 0, 0.0
        for i in rng.permutation(n):
            mask |= 1 << int(i)
            after = game(mask)
            marginals[k, i] = after - before
            before = after
    index = pd.Index(game.players)
    out = pd.Series(marginals.mean(axis=0), index=index, name="shapley")
    spread = marginals.std(axis=0, ddof=1) if samples > 1 else np.zeros(n)
    out.attrs["stderr"] = pd.Series(spread / math.sqrt(samples), index=index, name="stderr")
    return out


def _edge_cost(data: Mapping, u: Hashable, v: Hashable) -> float:
    for key in ("weight", "cost"):
        if key in data:
            value = float(data[key])
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"edge ({u!r}, {v!r}) has {key} {value}; it must be finite and >= 0"
                )
            return value
    raise ValueError(f"edge ({u!r}, {v!r}) has neither a 'weight' nor a 'cost' attribute")


def shapley_tree(
    tree: nx.Graph,
    root: Hashable,
    users: Mapping[Hashable, Hashable] | Iterable[Hashable],
) -> pd.Series:
    """Shapley value of a fixed-tree (airport) game, in closed form.

    The cost of a coalition is the cost of the part of ``tree`` connecting ``root`` to its
    members' nodes, e.g. a shared fiber trench from a point of presence. Its Shapley value
    splits each edge's cost equally among the players with a node downstream of the edge
    (Littlechild and Owen 1973; Megiddo 1978); edges with no user downstream are charged to
    nobody.

    Parameters
    ----------
    tree : networkx.Graph
        A tree; each edge's cost [CNY] is its ``weight`` attribute, else its ``cost``.
    root : hashable
        Node where the shared facility starts (a point of presence, the runway's start).
    users : mapping or iterable
        ``{node: player}`` (a player may own several nodes), or an iterable of user nodes,
        each node then being its own player.

    Returns
    -------
    pandas.Series
        Charge of each player [CNY], indexed by player in order of first appearance; the
        charges sum to the cost of the subtree joining ``root`` to all users.

    Raises
    ------
    ValueError
        If ``tree`` is not a tree, ``root`` or a user node is not in it, or an edge has no
        finite, non-negative cost.
    """
    if tree.number_of_nodes() == 0 or not nx.is_tree(tree):
        raise ValueError("shapley_tree needs a non-empty tree (connected and acyclic)")
    if root not in tree:
        raise ValueError(f"root {root!r} is not a node of the tree")
    owner = dict(users) if isinstance(users, Mapping) else {node: node for node in users}
    missing = [node for node in owner if node not in tree]
    if missing:
        raise ValueError(f"user nodes not in the tree: {missing[:6]!r}")
    order = list(dict.fromkeys(owner.values()))
    charges = dict.fromkeys(order, 0.0)
    parent = dict(nx.bfs_predecessors(tree, root))
    below: dict[Hashable, set] = {}
    for node in reversed(list(nx.dfs_preorder_nodes(tree, root))):
        here = below.setdefault(node, set())
        if node in owner:
            here.add(owner[node])
        if node == root:
            continue
        up = parent[node]
        below.setdefault(up, set()).update(here)
        if here:
            share = _edge_cost(tree.edges[up, node], up, node) / len(here)
            for player in here:
                charges[player] += share
    return pd.Series(charges, index=pd.Index(order), name="shapley", dtype=float)


def _lp(
    objective: np.ndarray,
    a_ub: np.ndarray | None,
    b_ub: np.ndarray | None,
    a_eq: np.ndarray,
    b_eq: np.ndarray,
    bounds: list[tuple[float | None, float | None]],
) -> np.ndarray:
    """Solve a minimisation LP through the project's one backend (:func:`milp.solve`, HiGHS),
    raising on anything but an optimum."""
    n = objective.size
    a_ub = np.zeros((0, n)) if a_ub is None else np.asarray(a_ub, float)
    b_ub = np.zeros(0) if b_ub is None else np.asarray(b_ub, float)
    a_eq, b_eq = np.asarray(a_eq, float).reshape(-1, n), np.asarray(b_eq, float)
    problem = milp.Problem(
        c=np.asarray(objective, float),
        A=sparse.csc_matrix(np.vstack([a_ub, a_eq])),
        row_lower=np.r_[np.full(b_ub.size, -np.inf), b_eq],
        row_upper=np.r_[b_ub, b_eq],
        col_lower=np.array([-np.inf if lo is None else lo for lo, _ in bounds], float),
        col_upper=np.array([np.inf if hi is None else hi for _, hi in bounds], float),
        integrality=np.zeros(n, bool),
        name="nucleolus",
    )
    result = milp.solve(problem, time_limit_s=600.0)
    if result.status != "optimal" or result.x is None:
        raise ValueError(f"nucleolus LP failed: {result.status} {result.message}".rstrip())
    return np.asarray(result.x)


def _independent(rows: np.ndarray, candidate: np.ndarray, tol: float = 1e-9) -> bool:
    """Whether ``candidate`` is not in the row space of ``rows``."""
    if rows.shape[0] == 0:
        return bool(np.any(candidate != 0))
    stacked = np.vstack([rows, candidate])
    return np.linalg.matrix_rank(stacked, tol=tol) > np.linalg.matrix_rank(rows, tol=tol)


def nucleolus(
    cost: CostFunction,
    players: Iterable[Hashable],
    *,
    imputations: bool = True,
) -> pd.Series:
    """Nucleolus of a cost game, by sequential linear programs that fix only coalitions proven tight.

    For a charge vector ``x`` with ``x(N) = c(N)``, the excess of a coalition ``S`` is
    ``x(S) - c(S)`` [CNY], what ``S`` pays beyond its stand-alone cost (minus its savings).
    The nucleolus (Schmeidler 1969) lexicographically minimises the excesses of all proper
    non-empty coalitions sorted in decreasing order: it maximises the smallest savings, then
    the next smallest, and so on. It lies in the core whenever the core is non-empty.

    Each round solves ``min t`` subject to efficiency, the excesses fixed in earlier rounds,
    and ``x(S) - c(S) <= t`` for the other coalitions. A coalition's excess is then fixed at
    ``t*`` only if it equals ``t*`` in every optimal solution, which a second LP per candidate
    proves (maximise its slack with ``t = t*``; candidates slack in any solution found are
    dropped). Fixing every coalition tight in one optimal solution, or every one with a
    non-zero dual, can give a wrong answer (Guajardo and Jörnsten 2015, "Common mistakes in
    computing the nucleolus", EJOR 247(2)). Coalitions whose characteristic vectors are
    spanned by the fixed ones have a constant excess and leave the LP; the rounds stop when
    the fixed vectors span ``R^n`` and ``x`` is unique.

    Parameters
    ----------
    cost : callable
        ``cost(coalition)`` for a ``frozenset`` of players: the stand-alone cost [CNY].
    players : iterable of hashable
        Distinct players, at most ``MAX_NUCLEOLUS_PLAYERS`` (every coalition is a row of each
        LP, and one LP is solved per candidate coalition).
    imputations : bool
        ``True`` (default): over imputations, ``x_i <= c({i})`` (the nucleolus proper);
        ``False``: over all efficient vectors (the prenucleolus). They agree when the core is
        non-empty.

    Returns
    -------
    pandas.Series
        Charge of each player [CNY], indexed by player; the charges sum to ``c(N)``.

    Raises
    ------
    ValueError
        On duplicate or no players, more than ``MAX_NUCLEOLUS_PLAYERS`` players, a
        non-finite cost, an empty imputation set (``c(N) > sum_i c({i})``) with
        ``imputations=True``, or an LP that fails.
    """
    names = _players(players)
    n = len(names)
    if n > MAX_NUCLEOLUS_PLAYERS:
        raise ValueError(
            f"nucleolus over {n} players: the LPs have 2**{n} rows; at most "
            f"{MAX_NUCLEOLUS_PLAYERS} players are supported"
        )
    game = _Game(cost, names)
    full = (1 << n) - 1
    grand = game(full)
    if n == 1:
        return pd.Series([grand], index=pd.Index(names), name="nucleolus")
    single = np.array([game(1 << i) for i in range(n)])
    if imputations and grand > single.sum() + 1e-9 * max(1.0, abs(grand)):
        raise ValueError(
            f"the imputation set is empty: c(N) = {grand} exceeds the sum of stand-alone costs "
            f"{single.sum()}; pass imputations=False for the prenucleolus"
        )
    scale = max(1.0, grand, *(abs(game(m)) for m in range(1, full + 1)))
    tol = 1e-7 * scale

    def vector(mask: int) -> np.ndarray:
        return np.array([(mask >> i) & 1 for i in range(n)], dtype=float)

    # equality rows (characteristic vectors, independent) and right-hand sides of x . row = rhs
    eq_rows = [vector(full)]
    eq_rhs = [grand]
    free = [m for m in range(1, full)]
    rows = {m: vector(m) for m in free}
    bounds: list[tuple[float | None, float | None]] = [
        (None, float(single[i]) if imputations else None) for i in range(n)
    ] + [(None, None)]
    pinned: set[int] = set()  # players held at x_i = c({i}) in every optimal solution
    x = np.zeros(n)
    while True:
        basis = np.array(eq_rows)
        free = [m for m in free if _independent(basis, rows[m])]
        if len(eq_rows) == n or not free:
            break
        # variables: x (n), t; constraints x(S) - t <= c(S) for free S
        a_ub = np.array([np.append(rows[m], -1.0) for m in free])
        b_ub = np.array([game(m) for m in free])
        a_eq = np.hstack([basis, np.zeros((len(eq_rows), 1))])
        b_eq = np.array(eq_rhs)
        objective = np.zeros(n + 1)
        objective[-1] = 1.0
        sol = _lp(objective, a_ub, b_ub, a_eq, b_eq, bounds)
        level = float(sol[-1])
        # with t held at its optimum, find the coalitions tight in every optimal solution
        level_bounds = bounds[:-1] + [(level, level)]
        slack = b_ub - a_ub @ sol
        unknown = {m for m, s in zip(free, slack, strict=True) if s <= tol}
        tight: list[int] = []
        while unknown:
            m = min(unknown)
            unknown.discard(m)
            objective = np.append(rows[m], 0.0)  # min x(S) = max slack c(S) + t* - x(S)
            alt = _lp(objective, a_ub, b_ub + tol, a_eq, b_eq, level_bounds)
            if game(m) + level - float(rows[m] @ alt[:n]) <= 10 * tol:
                tight.append(m)
            alt_slack = b_ub - a_ub @ alt
            unknown -= {f for f, s in zip(free, alt_slack, strict=True) if s > 10 * tol}
        if imputations:
            for i in range(n):
                if i in pinned or sol[i] < single[i] - tol:
                    continue
                objective = np.zeros(n + 1)
                objective[i] = 1.0  # pinned if even the smallest optimal x_i is c({i})
                alt = _lp(objective, a_ub, b_ub + tol, a_eq, b_eq, level_bounds)
                if alt[i] >= single[i] - 10 * tol:
                    pinned.add(i)
                    tight_row = np.zeros(n)
                    tight_row[i] = 1.0
                    if _independent(np.array(eq_rows), tight_row):
                        eq_rows.append(tight_row)
                        eq_rhs.append(float(single[i]))
        if not tight and len(eq_rows) == len(basis):
            raise ValueError(
                "nucleolus: no coalition is tight in every optimal solution (numerical trouble)"
            )
        for m in tight:
            if _independent(np.array(eq_rows), rows[m]):
                eq_rows.append(rows[m])
                eq_rhs.append(game(m) + level)
        x = sol[:n]
    basis = np.array(eq_rows)
    if len(eq_rows) == n:
        x = np.linalg.solve(basis, np.array(eq_rhs))
    return pd.Series(x, index=pd.Index(names), name="nucleolus")


def excesses(
    cost: CostFunction, players: Iterable[Hashable], charges: Mapping | pd.Series
) -> pd.Series:
    """Excess ``x(S) - c(S)`` [CNY] of every proper non-empty coalition under ``charges``.

    Parameters
    ----------
    cost : callable
        ``cost(coalition)`` for a ``frozenset`` of players [CNY].
    players : iterable of hashable
        Distinct players.
    charges : mapping or pandas.Series
        Charge of each player [CNY].

    Returns
    -------
    pandas.Series
        Excess of each coalition [CNY], indexed by the coalition (a ``frozenset``), largest
        first. All are ``<= 0`` exactly when ``charges`` (if efficient) is in the core.
    """
    names = _players(players)
    out = {}
    for size in range(1, len(names)):
        for group in combinations(names, size):
            coalition = frozenset(group)
            out[coalition] = sum(float(charges[p]) for p in group) - float(cost(coalition))
    return pd.Series(out, dtype=float, name="excess").sort_values(ascending=False)
