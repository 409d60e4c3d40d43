"""The servers `tools/bench/servers.py` compares the appliance with, one module each.

Every contender serves the same bundle with the same decode and preprocessing code (the
appliance's), so the benchmark compares serving stacks, not image code. The peers run in
virtualenvs of their own that the benchmark creates; nothing here is a project dependency.
"""
