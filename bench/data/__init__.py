"""Datasets: registry, loaders for the released layouts, the synthetic blur benchmark, validation.

Entry points (``bench.data.registry``): ``list_datasets``, ``get_dataset``, ``data_root``,
``load_scene`` (validates first; generates synthetic scenes on first use), ``check_scene``.
Every loader returns ``bench.data.scene.Scene``.

Conventions shared by every loader
----------------------------------
- Cameras: OpenCV pinhole, ``K`` in pixels of the training images, principal point at the image
  centre for the LLFF layouts, ``w2c`` world-to-camera.
- Time: training frame k of N has ``time = k / (N - 1)``; a test (right) view carries its left
  partner's frame index and time.
- LLFF layouts (DyBluRF, D2RF): pose axes LLFF -> OpenCV, ``sc = 1 / (5th percentile near bound
  x 0.9)``, recentring (LLFF ``recenter_poses``) over all 2N poses, rows ``[::2]`` left/train,
  ``[1::2]`` right/test, focal / resize factor (``bench.data.llff``).
- Depth from disparity (``bench.data.common.depth_from_disparity``), per dataset YAML key
  ``disparity``: ``inverse_depth`` -> ``depth = sc / disp`` (exact: the file holds 1/depth in
  pose units; the synthetic scenes), ``relative`` -> a monocular disparity affinely aligned per
  frame to the camera's LLFF bounds (the DyBluRF and D2RF releases). Deblur4DGS layout:
  ``depth = 1 / max(disp, 1e-3)``, clamped at 2.5 x the median of per-frame maximum depth.
- Masks: ``> 1e-3`` after /255, nearest resize (also disparities); test ground truth is
  INTER_AREA-resized to the training size; images are read lazily.

Synthetic scenes (``bench.data.synth``) are stored in a real layout plus ``<scene>/synthetic_gt/``
(``gt.npz``: sharp left frames, raw depth, dynamic masks, CoC radii, sub-frame displacements;
``meta.json``: parameters, raw cameras, landmarks); ``bench.data.synthetic`` = layout loader +
``GroundTruth``.
"""
