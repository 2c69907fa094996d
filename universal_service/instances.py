"""Readers for published benchmark instances: SteinLib and OR-Library."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd


@dataclass
class SteinLibInstance:
    """A SteinLib instance: graph (edge attribute ``weight``), terminals, optimum if recorded."""

    name: str
    graph: nx.Graph
    terminals: list[int]
    optimum: float | None


def read_steinlib(path: str | Path) -> SteinLibInstance:
    """Read a SteinLib ``.stp`` file (Koch, Martin and Voss 2000, STP format version 1.0).

    Reads the ``Graph`` section (``E u v w`` lines; for parallel edges the cheapest is kept),
    the ``Terminals`` section (``T t`` lines), the ``Name`` of the ``Comment`` section and an
    ``Optimal`` line if the file carries one. Other sections are skipped.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.stp`` file.

    Returns
    -------
    SteinLibInstance
    """
    path = Path(path)
    G = nx.Graph()
    terminals: list[int] = []
    name, optimum, section = path.stem, None, None
    for raw in path.read_text().splitlines():
        tok = raw.split()
        if not tok:
            continue
        head = tok[0].lower()
        if head == "section":
            section = tok[1].lower() if len(tok) > 1 else None
        elif head == "end":
            section = None
        elif section == "comment" and head == "name":
            name = raw.split(None, 1)[1].strip().strip('"')
        elif section == "graph" and head == "nodes":
            G.add_nodes_from(range(1, int(tok[1]) + 1))
        elif section == "graph" and head == "optimal":
            optimum = float(tok[1])
        elif section == "graph" and head in ("e", "a"):
            a, b, w = int(tok[1]), int(tok[2]), float(tok[3])
            if a != b and (not G.has_edge(a, b) or G.edges[a, b]["weight"] > w):
                G.add_edge(a, b, weight=w)
        elif section == "terminals" and head == "t":
            terminals.append(int(tok[1]))
    return SteinLibInstance(name, G, terminals, optimum)


def read_orlib_cap(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Fixed costs ``(m,)`` and assignment costs ``(n, m)`` of an OR-Library ``cap`` file.

    Format (Beasley, J.E. (1990), OR-Library, capacitated warehouse location): ``m n``; ``m`` lines
    ``capacity fixed_cost``; per customer its ``demand`` then ``m`` costs of allocating ALL of its
    demand to each warehouse. Capacities and demands are ignored (the uncapacitated problem, whose
    optima are Beasley's ``uncapopt`` table).

    Parameters
    ----------
    path : str or pathlib.Path
        A ``cap*.txt`` file.

    Returns
    -------
    tuple of numpy.ndarray
        Fixed cost of each warehouse ``(m,)`` and cost of assigning each customer to each
        warehouse ``(n, m)`` [cost units of the instance].
    """
    tokens = Path(path).read_text().split()
    m, n = int(tokens[0]), int(tokens[1])
    fixed = np.array(tokens[2 : 2 + 2 * m], dtype=object)[1::2].astype(float)
    body = np.array(tokens[2 + 2 * m :], dtype=object).reshape(n, m + 1)
    return fixed, body[:, 1:].astype(float)


def orlib_tables(fixed: np.ndarray, assign: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Options and sites tables of an OR-Library instance, for the optimizer.

    Village = customer, option = warehouse, site = warehouse with its fixed cost, in the long
    format :func:`universal_service.optimize.plan` reads.

    Parameters
    ----------
    fixed, assign : numpy.ndarray
        :func:`read_orlib_cap`'s fixed costs ``(m,)`` and assignment costs ``(n, m)``.

    Returns
    -------
    tuple of pandas.DataFrame
        ``options`` (``village_id`` "c0000"..., ``option_id`` and ``site_id`` "w000"...,
        ``technology`` "assign", ``cost``) and ``sites`` (``site_id``, ``cost``).
    """
    n, m = assign.shape
    villages = np.array([f"c{j:04d}" for j in range(n)], dtype=object)
    site_ids = np.array([f"w{i:03d}" for i in range(m)], dtype=object)
    options = pd.DataFrame(
        {
            "village_id": np.repeat(villages, m),
            "option_id": np.tile(site_ids, n),
            "technology": "assign",
            "site_id": np.tile(site_ids, n),
            "cost": assign.ravel(),
        }
    )
    return options, pd.DataFrame({"site_id": site_ids, "cost": fixed})
