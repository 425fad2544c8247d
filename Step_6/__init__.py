"""Step 6: evaluate the experts and fusion models: calibration, operating points, robustness, slices, report."""
