"""What a trained collaborative model learned: biases, a PCA map of items, neighbours."""
