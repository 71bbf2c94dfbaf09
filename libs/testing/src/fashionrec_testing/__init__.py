"""Test and demo tooling: `make demo`, the end-to-end tests and the benchmarks start from here.

``system`` describes the local system once (services, ports, env, readiness); ``supervisor``
runs and stops its processes; ``browser`` launches Chromium offline; ``toy_model`` exports a
tiny servable; ``api_docs`` checks that /docs and /redoc load only local assets; ``repo``
loads files no package installs (scripts/demo.py). Production images install
``fashionrec-common`` only, never this package.
"""
