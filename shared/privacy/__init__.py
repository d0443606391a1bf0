"""Differential privacy: central DP on the aggregate (plants clip, the dashboard adds Gaussian or Laplace noise
from the operating system's CSPRNG), Poisson sampling of plants, and the privacy accounting with Opacus's RDP
analysis (Mironov 2017; Mironov, Talwar and Zhang 2019 for the subsampled Gaussian mechanism); DP-SGD at the
plants (dp_sgd)."""
