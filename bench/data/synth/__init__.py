"""Synthetic dynamic scenes with known blur: analytic ray casting of textured primitives.

The image formation is independent of the Gaussian renderer: every pixel is a ray intersected
with planes, spheres and boxes in closed form, shaded by a procedural albedo texture.
"""
