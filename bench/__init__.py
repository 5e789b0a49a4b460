"""`make bench`: cold starts, calls per account, fetch throughput and cost at scale -> bench/results.md.

Everything is measured against the local stack (moto server + X sandbox, no added latency) in one
run; the scale section is arithmetic on those measured counts plus the list prices it names.
"""
