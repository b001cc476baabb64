"""The Common Trace Format (CTF 1.8), written and read in pure Python.

LTTng and babeltrace2 are the usual tools for CTF, but the Python bindings of
babeltrace2 are not published on PyPI and LTTng needs a session daemon, so
this package holds our own writer (:mod:`otelzmq.ctf.writer`, used by the
exporters in :mod:`otelzmq.ctf.exporters`) and reader
(:mod:`otelzmq.ctf.reader`). Both produce and accept traces laid out as
LTTng-UST lays out a per-user trace, so the two ecosystems interoperate.
"""
