"""``bench view``'s interactive viewer: a trained run rendered in the browser (viser) from any camera
at any training-frame time, as its sharp render, BP-Net's blurred reconstruction, the blur size or
the depth."""
