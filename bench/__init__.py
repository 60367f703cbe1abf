"""dydeblur-bench: benchmark and ablation harness for dynamic Gaussian splatting from blurry video."""

__version__ = "0.1.0"
