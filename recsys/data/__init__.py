"""From database rows to tensors: id maps, datasets and splits."""
