"""`make bench`: cold starts, calls per account, fetch throughput, cost at scale and X's bill ->
bench/results.md.

Everything is measured against the local stack (moto server + X sandbox, no added latency) in one
run; the scale and cost sections are arithmetic on those measured counts plus the list prices they
name. `python -m bench.bill` runs the X's-bill sections (5-7) alone.
"""
