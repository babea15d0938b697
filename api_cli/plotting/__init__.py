"""Plots of runs: PNG files through matplotlib (Agg) and charts drawn in the terminal."""
