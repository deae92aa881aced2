"""Accord's benchmark harness (`python -m bench --scale small|default|100k|1m`, `make bench`).

Not tests: it generates a data set with COPY into a dedicated PostgreSQL database (accord_bench),
starts the real processes (private redis-server, gunicorn, Celery worker and beat), drives them
over loopback with bounded loops, measures each figure beside its floor, and writes
bench/results/latest.json and latest.md. See docs/benchmarks.md.

Modules: scales (sizes and budgets), env (database, environment, machine, noise), datagen (COPY),
processes (start/stop), client (HTTP), load (traffic generators), floors (what each figure is
compared with), suite (one function per metric), metrics (statistics, targets), report (output),
main (the order of things).
"""
