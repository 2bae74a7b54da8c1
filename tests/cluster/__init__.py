# A package on purpose: it gives this directory's conftest.py the module name "cluster.conftest", so it
# does not replace tests/conftest.py as "conftest" (which the other test modules import from).
