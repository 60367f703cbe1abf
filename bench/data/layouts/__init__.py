"""The on-disk layouts of the released datasets, each described once: folder and file names,
counts, and the check of a scene (``check(..., full=False)`` the quick one, ``full=True`` the one
that also reads every file).

One module per layout (``dyblurf``, ``d2rf``, ``d4dgs``), used by the loader's check
(``bench.data.<layout>.check``), the quick presence check (``bench.data.presence``) and the
synthetic writer (``bench.data.synth.write``). Nothing here imports torch, so that planning a sweep
over thousands of scenes stays cheap.
"""
