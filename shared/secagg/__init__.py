"""Secure aggregation (Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving Machine Learning",
CCS 2017, with double masking). The primitives (X25519, HKDF, ChaCha20, AES-GCM) come from `cryptography`;
the protocol around them is ours, in small modules: shamir (t-of-n sharing over a prime field), quantize
(fixed point in Z_2^64), keys (pairwise keys), masking (mask expansion), channel (encrypted shares),
protocol (the plant's and the aggregator's stages)."""
