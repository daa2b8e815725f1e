"""Image classification on the shared Learner: folders, a CNN, interpretation, cleaning."""
