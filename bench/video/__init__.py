"""Videos of trained runs: camera paths through a scene (paths), the frames' panels (panels), the
one MP4 writer (encode) and ``bench render``'s entry point (render). The report composes its
comparison videos from files on disk with ``encode`` and ``panels`` only: neither imports a model.
"""

# The camera paths (bench.video.paths) and panels (bench.video.render) by name, importable without
# torch so that ``bench --help`` stays fast.
PATHS = ("test", "spiral", "fixed", "bullet")
PANELS = ("blurred", "kernels", "depth")
