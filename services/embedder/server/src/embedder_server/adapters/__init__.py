"""TensorFlow: loading a SavedModel version and calling its signatures."""
