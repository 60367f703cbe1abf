"""Exports of a trained run in formats other tools read: its Gaussians as 3D Gaussian Splatting
PLY files (bench.export.ply)."""
