"""Derivation of the closed form of |M|^2(g b -> t W-) used by ``data_prep.wt_process.me2_summed`` (run by hand).

This script needs sympy, which is NOT a dependency of the package (nothing imports this file); run it with any
Python that has sympy, e.g. ``python3 data_prep/derive_wt_me2.py`` (it does not import the package). It prints
the spin/colour-summed |M|^2 / (g_s^2 g^2 / 2) of the two LO diagrams (s-channel b, u-channel top; massless b,
V_tb = 1, gluon polarisation sum -g, W polarisation sum -g + k k / m4^2, the same conventions as the numeric trace
``wt_process.me2_trace``) as a polynomial in the invariants, with the top and W masses m3, m4 of the event and the
top propagator mass M (any values: off-shell m3, m4 and M != m3 allowed).

Method (a small trace routine written out here, sympy only for the algebra):

* amplitude M^{mu nu} = ubar(t) G^{mu nu} u(b), G = gamma^nu P_L S_b gamma^mu + gamma^mu S_t gamma^nu P_L, with
  S_b = (p_b + p_g)/ / s and S_t = ((p_t - p_g)/ + M) / (u - M^2) (mu gluon, nu W; t = (p_b - p_t)^2,
  u = (p_g - p_t)^2 = m3^2 + m4^2 - s - t);
* G = X P_L with X = gamma^nu S_b gamma^mu + gamma^mu S_t gamma^nu, and Gbar = P_R Xbar, so
  Tr[(p_t/ + m3) G p_b/ Gbar] = 1/2 Tr[(p_t/ + m3) X p_b/ Xbar] + (a gamma_5 trace). The gamma_5 part is a single
  Levi-Civita tensor contracted with metrics and the momenta, of which only three (p_b, p_g, p_t) are independent,
  so it vanishes after the polarisation sums;
* traces of products of gamma matrices by the recursion Tr[a1 ... an] = sum_k (-1)^k (a1.ak) Tr[a2 .. ^ak .. an],
  Tr[1] = 4, Lorentz indices contracted afterwards (g^mu_mu = 4: four dimensions, no regularisation needed at tree
  level);
* polarisation sums: (-g_{mu mu'}) (-g_{nu nu'} + k_nu k_nu' / m4^2) T^{mu nu mu' nu'} =
  T^{mu nu}_{mu nu} - T^{mu k}_{mu k} / m4^2 (index nu replaced by the W momentum k = p_w); colour Tr(T^a T^a) = 4.

The result is printed as |M|^2 = (8 / m4^2) [P_ss / s^2 + 2 P_st / (s D) + P_tt / D^2] with D = u - M^2 (the top
propagator; 1/s is the b propagator) and P_xx polynomials in s, u, a = m3^2, w = m4^2, M (colour factor included).
The script then reads ``_me2_closed`` from data_prep/wt_process.py (plain arithmetic, so it runs on sympy symbols)
and checks that it equals the derived expression exactly; it exits with an error if not. The tests check the same
formula against the numeric trace (``me2_trace``) at random points, off-shell masses included.
"""

from __future__ import annotations

import ast
import itertools
import pathlib

import sympy as sp

s, t, m3, m4, M = sp.symbols("s t m3 m4 M", positive=True)
u = m3**2 + m4**2 - s - t
A, B = sp.symbols("A B")  # the propagators 1/s (b) and 1/(u - M^2) (top)
COLOUR = 4  # Tr(T^a T^a) summed over a
Vector = dict  # {basis momentum name: sympy coefficient}
Slot = tuple  # ("v", Vector): a slashed vector; ("i", name): gamma^name, the index contracted with its twin

# Basis momenta and their products (p_w = p_b + p_g - p_t); b and gluon massless.
BASIS = ("pb", "pg", "pt")
DOT = {("pb", "pb"): 0, ("pg", "pg"): 0, ("pt", "pt"): m3**2, ("pb", "pg"): s / 2,
       ("pb", "pt"): (m3**2 - t) / 2, ("pg", "pt"): (m3**2 - u) / 2}


def vec(**coeffs: int) -> Vector:
    """A four-vector as {basis momentum: coefficient}."""
    return {k: sp.Integer(v) for k, v in coeffs.items()}


def dot(a: Vector, b: Vector) -> sp.Expr:
    """Minkowski product of two vectors given as dicts over BASIS."""
    return sp.Add(*[ca * cb * DOT[tuple(sorted((ka, kb), key=BASIS.index))]
                    for ka, ca in a.items() for kb, cb in b.items()])


PB, PG, PT = vec(pb=1), vec(pg=1), vec(pt=1)
PS = vec(pb=1, pg=1)  # b propagator momentum
Q = vec(pt=1, pg=-1)  # top propagator momentum
PW = vec(pb=1, pg=1, pt=-1)


def trace_pairings(n: int) -> list[tuple[int, list[tuple[int, int]]]]:
    """All (sign, pairs) of Tr[gamma^{a_0} ... gamma^{a_{n-1}}] / 4 = sum sign * prod g(a_i, a_j)."""
    if n == 0:
        return [(1, [])]
    out = []
    for k in range(1, n):
        rest = [i for i in range(1, n) if i != k]
        for sign, pairs in trace_pairings(n - 2):
            out.append(((-1) ** (k - 1) * sign, [(0, k)] + [(rest[i], rest[j]) for i, j in pairs]))
    return out


_PAIRINGS = {n: trace_pairings(n) for n in (0, 2, 4, 6, 8)}


def trace(slots: list[Slot]) -> sp.Expr:
    """Tr of a product of gamma matrices; slots: ("v", vector dict) for a slashed vector or ("i", name) for a
    Lorentz index gamma^mu (each index name appears exactly twice: contracted). Returns a sympy expression."""
    n = len(slots)
    if n % 2:
        return sp.Integer(0)
    total = sp.Integer(0)
    for sign, pairs in _PAIRINGS[n]:
        partner = {}
        for i, j in pairs:
            partner[i], partner[j] = j, i
        other = {}  # the other occurrence of each index slot
        by_name = {}
        for i, (kind, x) in enumerate(slots):
            if kind == "i":
                by_name.setdefault(x, []).append(i)
        for a, b in by_name.values():
            other[a], other[b] = b, a
        seen, term = set(), sp.Integer(1)
        for start in range(n):  # open chains: vector - (index index)* - vector
            if start in seen or slots[start][0] != "v":
                continue
            cur = start
            seen.add(cur)
            while True:
                nxt = partner[cur]
                seen.add(nxt)
                if slots[nxt][0] == "v":
                    term *= dot(slots[start][1], slots[nxt][1])
                    break
                cur = other[nxt]
                seen.add(cur)
        for start in range(n):  # closed index loops: g^mu_mu = 4
            if start in seen:
                continue
            cur = start
            while cur not in seen:
                seen.add(cur)
                nxt = partner[cur]
                seen.add(nxt)
                cur = other[nxt]
            term *= 4
        total += sign * term
    return 4 * total


def terms_x(mu: Slot, nu: Slot) -> list[tuple[sp.Expr, list[Slot]]]:
    """X^{mu nu} as [(coefficient, slots)] with A = 1/s, B = 1/(u - M^2) as symbols."""
    return [(A, [nu, ("v", PS), mu]), (B, [mu, ("v", Q), nu]), (B * M, [mu, nu])]


def terms_xbar(mu: Slot, nu: Slot) -> list[tuple[sp.Expr, list[Slot]]]:
    """Xbar^{mu nu} = gamma^0 X^dagger gamma^0: the products reversed."""
    return [(c, list(reversed(sl))) for c, sl in terms_x(mu, nu)]



def summed(nu_slot: Slot, nub_slot: Slot) -> sp.Expr:
    """1/2 sum over the products of Tr[(p_t/ + m3) X^{mu nu} p_b/ Xbar^{mu nu'}] with gluon index contracted."""
    mu = ("i", "mu")
    top = [(sp.Integer(1), [("v", PT)]), (m3, [])]
    out = sp.Integer(0)
    for (c1, s1), (c2, s2), (c3, s3) in itertools.product(top, terms_x(mu, nu_slot), terms_xbar(mu, nub_slot)):
        slots = s1 + s2 + [("v", PB)] + s3
        out += c1 * c2 * c3 * trace(slots)
    return sp.expand(out / 2)


def derive() -> sp.Expr:
    """|M|^2 / (g_s^2 g^2 / 2) summed over spins and colours (colour factor included), as a sympy expression in
    s, t, m3, m4, M and the propagator symbols A = 1/s, B = 1/(u - M^2)."""
    nu = ("i", "nu")
    metric_part = summed(nu, nu)
    k_part = summed(("v", PW), ("v", PW))
    return sp.expand(COLOUR * (metric_part - k_part / m4**2))



def check_trace_routine() -> None:
    """Textbook identities the trace routine must reproduce (raises AssertionError otherwise)."""
    mu, nu = ("i", "mu"), ("i", "nu")
    assert trace([("v", PT), ("v", PB)]) == 4 * dot(PT, PB)
    assert trace([mu, mu]) == 16  # Tr[gamma^mu gamma_mu] = 4 x 4
    assert sp.expand(trace([mu, ("v", PT), mu, ("v", PB)]) + 8 * dot(PT, PB)) == 0  # gamma^mu a/ gamma_mu = -2 a/
    four = trace([("v", PT), ("v", PB), ("v", PG), ("v", PW)])
    expected = 4 * (dot(PT, PB) * dot(PG, PW) - dot(PT, PG) * dot(PB, PW) + dot(PT, PW) * dot(PB, PG))
    assert sp.expand(four - expected) == 0
    # gamma^mu a/ b/ c/ gamma_mu = -2 c/ b/ a/
    lhs = trace([mu, ("v", PT), ("v", PB), ("v", PG), mu, ("v", PW)])
    assert sp.expand(lhs + 2 * trace([("v", PG), ("v", PB), ("v", PT), ("v", PW)])) == 0
    assert sp.expand(trace([mu, nu, mu, nu]) + 32) == 0  # gamma^mu gamma^nu gamma_mu = -2 gamma^nu


def closed_form_from_source(path: pathlib.Path) -> sp.Expr:
    """The function ``_me2_closed`` of data_prep/wt_process.py (plain arithmetic only), evaluated on sympy
    symbols: the formula the package uses, to compare with the derivation."""
    tree = ast.parse(open(path).read())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_me2_closed")
    namespace = {}
    exec(compile(ast.Module(body=[node], type_ignores=[]), path, "exec"), namespace)
    return namespace["_me2_closed"](s, t, m3, m4, M)


def main() -> None:
    """Print the closed form and check the one pasted in wt_process.py against it."""
    check_trace_routine()
    total = derive()
    a, w, uu = sp.symbols("a w u")  # a = m3^2, w = m4^2, u = (p_g - p_t)^2
    names = {(2, 0): "P_ss: coefficient of 1/s^2", (1, 1): "P_st: coefficient of 1/(s (u - M^2))",
             (0, 2): "P_tt: coefficient of 1/(u - M^2)^2"}
    print("|M|^2 (spin and colour summed, / (g_s^2 g^2 / 2)) = (8 / m4^2) [P_ss / s^2 + 2 P_st / (s D) + P_tt / D^2],"
          "\nD = u - M^2, u = m3^2 + m4^2 - s - t, a = m3^2, w = m4^2, with\n")
    norm = {(2, 0): 8, (1, 1): 16, (0, 2): 8}
    for mon, c in sorted(sp.Poly(total, A, B).terms(), reverse=True):
        c = sp.expand(c * m4**2 / norm[mon]).subs(t, m3**2 + m4**2 - s - uu)
        c = sp.expand(c).subs({m3**2: a, m4**2: w}).subs(m3**4, a**2)
        c = sp.expand(c.subs({m3: sp.sqrt(a), m4: sp.sqrt(w)}))
        parts = sp.collect(c, [M], evaluate=False)
        text = " + ".join(f"({sp.factor(v)}) * {k}" if k != 1 else f"({sp.factor(v)})"
                          for k, v in sorted(parts.items(), key=lambda kv: str(kv[0]), reverse=True))
        print(f"{names[mon]} =\n    {text}\n".replace("sqrt(a)", "m3"))
    source = pathlib.Path(__file__).with_name("wt_process.py")
    pasted = closed_form_from_source(source)
    exact = total.subs({A: 1 / s, B: 1 / (m3**2 + m4**2 - s - t - M**2)})
    diff = sp.simplify(sp.together(pasted - exact))
    print(f"{source.name}: _me2_closed - derived = {diff}")
    if diff != 0:
        raise SystemExit("the closed form in wt_process.py differs from the derivation")


if __name__ == "__main__":
    main()
