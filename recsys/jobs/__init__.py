"""The batch side: the training job (database -> trained, registered model) and the
model-version registry that the service follows."""
