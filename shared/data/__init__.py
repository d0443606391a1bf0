"""Plant data: the simulator, the CSV loader, the splits and the feature scaler."""
