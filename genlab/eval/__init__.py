"""Evaluation: domain classifiers, metrics (FID/KID, label agreement, reconstruction)."""
