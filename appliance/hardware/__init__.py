"""Hardware behind small protocols, each with real and fake back-ends chosen by name in the
settings. Real drivers (picamera2, OpenCV, luma) are imported inside the one adapter that
needs them, so the package imports anywhere."""
