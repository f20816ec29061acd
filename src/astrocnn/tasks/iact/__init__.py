"""Imaging atmospheric Cherenkov telescopes: cameras and the mapping of hexagonal images (the
simulation, tasks, Hillas baseline and plots of the family come on top of these)."""

from astrocnn.tasks.iact.camera import BilinearMapping, Camera, get_camera

__all__ = ["BilinearMapping", "Camera", "get_camera"]
