"""Differential privacy: central DP on the aggregate (plants clip, the dashboard adds Gaussian noise) and
its privacy accounting with Opacus's RDP accountant (Mironov 2017; Abadi et al. 2016 for the subsampled
Gaussian mechanism)."""
